//! The agent's Prometheus metrics, rendered in the OpenMetrics text format that
//! Prometheus scrapes, its readiness and its latest report: what the agent's
//! `/metrics`, `/healthz`, `/readyz` and `/state` show (served by `telemetry::http`).
//!
//! Owns the metric names, help texts, labels and histogram buckets. It lives beside
//! the agent, as the operator's lives beside the operator, because its label values
//! are the agent's vocabulary: drop reasons, placement reasons, takeover phases. It
//! must never use a label value that is not bounded by the configuration or the
//! code (member and group names come from the config, reasons and phases are fixed
//! strings), and never decide anything: the runtime reports, this module counts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::ResourceState;
use crate::contract::report::{AgentState, MAX_STATE_BYTES};
use crate::membership::DropReason;
use crate::placement::Reason;
use crate::telemetry::http::{Endpoints, State};

/// What the HTTP endpoints show: the metrics, whether the node is ready and its
/// latest report.
#[derive(Debug, Default)]
pub struct Telemetry {
    pub metrics: Metrics,
    /// Quorate: the node can take part in ownership decisions (`/readyz`).
    ready: AtomicBool,
    /// The latest report (`/state`), `None` before the first. The event loop swaps
    /// in a new one and an HTTP task clones the `Arc`: neither holds the lock for
    /// longer than that, and the JSON is made in the HTTP task, off the loop.
    state: Mutex<Option<Arc<AgentState>>>,
}

impl Telemetry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Publishes the node's latest report for `/state` (`None`: it has none).
    pub fn set_state(&self, state: Option<AgentState>) {
        // Nothing panics while holding the lock; a poisoned one holds a whole value.
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state.map(Arc::new);
    }
}

impl Endpoints for Telemetry {
    fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    fn ready(&self) -> bool {
        Telemetry::ready(self)
    }

    fn readiness_words(&self) -> (&'static str, &'static str) {
        ("quorate", "not quorate")
    }

    fn state(&self) -> State {
        let state = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(state) = state else {
            return State::Unavailable(
                "no report yet: the agent is starting or has no configuration",
            );
        };
        // Plain data with string keys: serializing cannot fail.
        let mut json = serde_json::to_string_pretty(&*state).unwrap_or_default();
        json.push('\n');
        if json.len() > MAX_STATE_BYTES {
            return State::Unavailable("the report is larger than a reader accepts");
        }
        State::Json(json)
    }
}

/// The steps of a takeover, in order, timed from the detection of the failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Placement chose this node (it asks the voters).
    Decided,
    /// A majority voted for it (the ledger, in both modes).
    Ledger,
    /// Its VIPs are on the interface.
    VipUp,
    /// The first announcement (gratuitous ARP / unsolicited NA) left.
    ArpSent,
    /// Every resource of the group is online, in dependency order.
    Online,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Decided => "decided",
            Phase::Ledger => "ledger",
            Phase::VipUp => "vip_up",
            Phase::ArpSent => "arp_sent",
            Phase::Online => "online",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemberLabel {
    member: String,
}

/// A heartbeat link to a peer: the link is its index (0 is `address`, i is
/// `additionalAddresses[i-1]`), bounded like the members by the configuration, and
/// the same on both ends of the link, unlike an address.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LinkLabel {
    peer: String,
    link: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InterfaceLabel {
    interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceStateLabel {
    group: String,
    resource: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceFailureLabel {
    group: String,
    resource: String,
    reason: &'static str,
    /// `restarted` (in place) or `failed_over`.
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    kind: &'static str,
    step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

const RESOURCE_STATES: [ResourceState; 5] = [
    ResourceState::Offline,
    ResourceState::Starting,
    ResourceState::Online,
    ResourceState::Stopping,
    ResourceState::Failed,
];

fn resource_state_label(state: ResourceState) -> &'static str {
    match state {
        ResourceState::Offline => "Offline",
        ResourceState::Starting => "Starting",
        ResourceState::Online => "Online",
        ResourceState::Stopping => "Stopping",
        ResourceState::Failed => "Failed",
    }
}

type HistogramFamily = Family<PhaseLabel, Histogram, fn() -> Histogram>;

fn phase_histogram() -> Histogram {
    // 1 ms to about 16 s: covers 5 ms heartbeats as well as the default 1 s deadAfter.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every metric of the agent, registered under the `failover_` prefix. Cheap to
/// update from the event loop (atomics); rendering takes the registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    heartbeats_sent: Counter,
    heartbeats_received: Counter,
    heartbeats_dropped: Family<ReasonLabel, Counter>,
    send_errors: Counter,
    peer_up: Family<MemberLabel, Gauge>,
    link_up: Family<LinkLabel, Gauge>,
    quorum: Gauge,
    group_owned: Family<GroupLabel, Gauge>,
    resource_state: Family<ResourceStateLabel, Gauge>,
    resource_failures: Family<ResourceFailureLabel, Counter>,
    failovers: Family<ReasonLabel, Counter>,
    phase_seconds: HistogramFamily,
    resource_step_seconds: Family<StepLabel, Histogram, fn() -> Histogram>,
    vip_errors: Family<OpLabel, Counter>,
    config_reloads: Family<ResultLabel, Counter>,
    config_pushes: Family<OutcomeLabel, Counter>,
    interface_up: Family<InterfaceLabel, Gauge>,
    interface_downs: Family<InterfaceLabel, Counter>,
    config_mismatch: Gauge,
    config_outvoted: Gauge,
    witness_changing: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("failover");
        // Registration takes clones (metrics are shared atomics); the registry then
        // moves into the struct beside them.
        let mut m = Metrics {
            registry: Registry::default(),
            heartbeats_sent: Counter::default(),
            heartbeats_received: Counter::default(),
            heartbeats_dropped: Family::default(),
            send_errors: Counter::default(),
            peer_up: Family::default(),
            link_up: Family::default(),
            quorum: Gauge::default(),
            group_owned: Family::default(),
            resource_state: Family::default(),
            resource_failures: Family::default(),
            failovers: Family::default(),
            phase_seconds: Family::new_with_constructor(phase_histogram),
            resource_step_seconds: Family::new_with_constructor(phase_histogram),
            vip_errors: Family::default(),
            config_reloads: Family::default(),
            config_pushes: Family::default(),
            interface_up: Family::default(),
            interface_downs: Family::default(),
            config_mismatch: Gauge::default(),
            config_outvoted: Gauge::default(),
            witness_changing: Gauge::default(),
        };
        registry.register(
            "heartbeats_sent",
            "Heartbeats built and sent (one per interval, to every other member)",
            m.heartbeats_sent.clone(),
        );
        registry.register(
            "heartbeats_received",
            "Valid heartbeats received",
            m.heartbeats_received.clone(),
        );
        registry.register(
            "heartbeats_dropped",
            "Datagrams dropped, by reason",
            m.heartbeats_dropped.clone(),
        );
        registry.register(
            "heartbeat_send_errors",
            "Heartbeat datagrams the kernel refused to send",
            m.send_errors.clone(),
        );
        registry.register(
            "peer_up",
            "1 while a valid heartbeat of the member arrived within deadAfter",
            m.peer_up.clone(),
        );
        registry.register(
            "heartbeat_link_up",
            "1 while the heartbeat link (0 = address, i = additionalAddresses[i-1]) carried a heartbeat of the peer within deadAfter",
            m.link_up.clone(),
        );
        registry.register("quorum", "1 while this node is quorate", m.quorum.clone());
        registry.register(
            "group_owned",
            "1 while this node runs the group's resources",
            m.group_owned.clone(),
        );
        registry.register(
            "resource_state",
            "1 for the state each resource of a group is in on this node (Offline, Starting, Online, Stopping, Failed), 0 for the others",
            m.resource_state.clone(),
        );
        registry.register(
            "resource_failures",
            "Failures of a running resource on this node (reason HealthCheckFailed or ProcessExited), by what followed: action restarted (in place) or failed_over (restartLimit reached)",
            m.resource_failures.clone(),
        );
        registry.register(
            "failovers",
            "Groups this node brought online, by the placement reason (Placed, OwnerLost, OwnerPaused, OwnerLeaving, Failback, ManualMove, ...)",
            m.failovers.clone(),
        );
        registry.register(
            "phase_seconds",
            "Time from the detection of a failure (peer down) to each phase of the takeover on this node",
            m.phase_seconds.clone(),
        );
        registry.register(
            "resource_step_seconds",
            "Time one start or stop step of a resource took on this node, by resource kind and step (each bounded by half of deadAfter)",
            m.resource_step_seconds.clone(),
        );
        registry.register(
            "vip_errors",
            "Failed VIP operations, by operation",
            m.vip_errors.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads, by result (applied, unchanged, rejected)",
            m.config_reloads.clone(),
        );
        registry.register(
            "config_push",
            "Configuration pushes received (failover config push, standalone), by outcome: applied, unchanged, or the reason of a refusal",
            m.config_pushes.clone(),
        );
        registry.register(
            "interface_up",
            "1 while the interface of a configured VIP is up (administratively up, carrier, running); 0 while it is not or is absent",
            m.interface_up.clone(),
        );
        registry.register(
            "interface_downs",
            "Times the interface of a configured VIP went from up to down, lost its carrier or vanished",
            m.interface_downs.clone(),
        );
        registry.register(
            "config_mismatch",
            "Live peers that have run another configuration than this node (another config hash in their heartbeats) for longer than the grace",
            m.config_mismatch.clone(),
        );
        registry.register(
            "config_outvoted",
            "1 while a majority of the members runs another configuration than this node: it keeps the groups it runs and takes no other",
            m.config_outvoted.clone(),
        );
        registry.register(
            "witness_changing",
            "1 while a change of witness lasts on this node: a witness vote needs the previous and the new witness until every member is seen on this node's configuration",
            m.witness_changing.clone(),
        );
        m.registry = registry;
        m
    }
}

impl Metrics {
    /// The text exposition (OpenMetrics 1.0, which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    pub fn heartbeats(&self, sent: u64, received: u64) {
        self.heartbeats_sent.inc_by(sent);
        self.heartbeats_received.inc_by(received);
    }

    pub fn dropped(&self, reason: DropReason, count: u64) {
        self.heartbeats_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc_by(count);
    }

    pub fn send_error(&self) {
        self.send_errors.inc();
    }

    pub fn peer(&self, member: &str, up: bool) {
        self.peer_up
            .get_or_create(&MemberLabel {
                member: member.to_owned(),
            })
            .set(i64::from(up));
    }

    /// Shows whether heartbeat link `link` to `peer` carried a heartbeat within
    /// deadAfter.
    pub fn link(&self, peer: &str, link: usize, up: bool) {
        self.link_up
            .get_or_create(&LinkLabel {
                peer: peer.to_owned(),
                link,
            })
            .set(i64::from(up));
    }

    /// Keeps the per-member, per-link and per-group series to the configured
    /// names and the `links` heartbeat links.
    pub fn retain_config<'a>(
        &self,
        members: impl IntoIterator<Item = &'a str>,
        groups: impl IntoIterator<Item = &'a str>,
        links: usize,
    ) {
        // Families cannot be filtered in place: clear and recreate with the state
        // the runtime reports next.
        self.peer_up.clear();
        self.link_up.clear();
        for member in members {
            self.peer(member, false);
            for link in 0..links {
                self.link(member, link, false);
            }
        }
        self.group_owned.clear();
        for group in groups {
            self.owned(group, false);
        }
        // Resource series come back with the next state the supervisor shows.
        self.resource_state.clear();
    }

    /// Shows `state` as the state of `resource` of `group`.
    pub fn resource_state(&self, group: &str, resource: &str, state: ResourceState) {
        for each in RESOURCE_STATES {
            self.resource_state
                .get_or_create(&ResourceStateLabel {
                    group: group.to_owned(),
                    resource: resource.to_owned(),
                    state: resource_state_label(each),
                })
                .set(i64::from(each == state));
        }
    }

    /// Records how long one start or stop step of a resource of `kind` took.
    pub fn resource_step(&self, kind: &'static str, step: &'static str, seconds: f64) {
        self.resource_step_seconds
            .get_or_create(&StepLabel { kind, step })
            .observe(seconds);
    }

    /// Counts a failure of a running resource and what followed it.
    pub fn resource_failure(
        &self,
        group: &str,
        resource: &str,
        reason: &'static str,
        failed_over: bool,
    ) {
        self.resource_failures
            .get_or_create(&ResourceFailureLabel {
                group: group.to_owned(),
                resource: resource.to_owned(),
                reason,
                action: if failed_over {
                    "failed_over"
                } else {
                    "restarted"
                },
            })
            .inc();
    }

    pub fn quorate(&self, quorate: bool) {
        self.quorum.set(i64::from(quorate));
    }

    pub fn owned(&self, group: &str, owned: bool) {
        self.group_owned
            .get_or_create(&GroupLabel {
                group: group.to_owned(),
            })
            .set(i64::from(owned));
    }

    pub fn failover(&self, reason: Reason) {
        self.failovers
            .get_or_create(&ReasonLabel {
                reason: reason.code(),
            })
            .inc();
    }

    pub fn phase(&self, phase: Phase, seconds: f64) {
        self.phase_seconds
            .get_or_create(&PhaseLabel {
                phase: phase.label(),
            })
            .observe(seconds);
    }

    /// Shows how many peers run another configuration, and whether this node's is
    /// outvoted by a majority.
    pub fn config_mismatch(&self, peers: usize, outvoted: bool) {
        self.config_mismatch
            .set(i64::try_from(peers).unwrap_or(i64::MAX));
        self.config_outvoted.set(i64::from(outvoted));
    }

    /// Shows whether a witness vote needs the old witness besides the new one.
    pub fn witness_changing(&self, changing: bool) {
        self.witness_changing.set(i64::from(changing));
    }

    pub fn vip_error(&self, op: &'static str) {
        self.vip_errors.get_or_create(&OpLabel { op }).inc();
    }

    /// Interface names are those of the configured VIPs: bounded by the configuration.
    pub fn interface_up(&self, interface: &str, up: bool) {
        self.interface_up
            .get_or_create(&InterfaceLabel {
                interface: interface.to_owned(),
            })
            .set(i64::from(up));
    }

    pub fn interface_went_down(&self, interface: &str) {
        self.interface_downs
            .get_or_create(&InterfaceLabel {
                interface: interface.to_owned(),
            })
            .inc();
    }

    /// The interface carries no configured VIP any more: its gauge goes.
    pub fn forget_interface(&self, interface: &str) {
        self.interface_up.remove(&InterfaceLabel {
            interface: interface.to_owned(),
        });
    }

    pub fn config_reload(&self, result: &'static str) {
        self.config_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// One configuration push answered with `outcome` (a `PushOutcome` label).
    pub fn config_push(&self, outcome: &'static str) {
        self.config_pushes
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_its_labels() {
        let m = Metrics::default();
        m.heartbeats(3, 2);
        m.heartbeats(1, 0);
        m.dropped(DropReason::BadMac, 2);
        m.peer("n2", true);
        m.peer("n3", false);
        m.link("n2", 0, true);
        m.link("n2", 1, false);
        m.quorate(true);
        m.owned("web", true);
        m.failover(Reason::OwnerLost);
        m.phase(Phase::VipUp, 0.3);
        m.phase(Phase::VipUp, 0.0005);
        m.vip_error("acquire");
        m.send_error();
        m.config_reload("rejected");
        m.config_push("bad_mac");
        m.interface_up("eth1", false);
        m.interface_went_down("eth1");
        m.interface_up("gone", true);
        m.forget_interface("gone");
        m.resource_state("web", "vip", ResourceState::Online);
        m.phase(Phase::Online, 0.4);
        m.config_mismatch(2, true);
        let text = m.render();
        for line in [
            "failover_heartbeats_sent_total 4",
            "failover_heartbeats_received_total 2",
            "failover_heartbeats_dropped_total{reason=\"bad_mac\"} 2",
            "failover_heartbeat_send_errors_total 1",
            "failover_config_mismatch 2",
            "failover_config_outvoted 1",
            "failover_peer_up{member=\"n2\"} 1",
            "failover_peer_up{member=\"n3\"} 0",
            "failover_heartbeat_link_up{peer=\"n2\",link=\"0\"} 1",
            "failover_heartbeat_link_up{peer=\"n2\",link=\"1\"} 0",
            "failover_quorum 1",
            "failover_group_owned{group=\"web\"} 1",
            "failover_failovers_total{reason=\"OwnerLost\"} 1",
            "failover_phase_seconds_count{phase=\"vip_up\"} 2",
            "failover_phase_seconds_bucket{le=\"0.001\",phase=\"vip_up\"} 1",
            "failover_phase_seconds_bucket{le=\"0.512\",phase=\"vip_up\"} 2",
            "failover_vip_errors_total{op=\"acquire\"} 1",
            "failover_config_reloads_total{result=\"rejected\"} 1",
            "failover_config_push_total{outcome=\"bad_mac\"} 1",
            "failover_interface_up{interface=\"eth1\"} 0",
            "failover_interface_downs_total{interface=\"eth1\"} 1",
            "failover_resource_state{group=\"web\",resource=\"vip\",state=\"Online\"} 1",
            "failover_resource_state{group=\"web\",resource=\"vip\",state=\"Failed\"} 0",
            "failover_phase_seconds_count{phase=\"online\"} 1",
            "# TYPE failover_phase_seconds histogram",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        let sum = text
            .lines()
            .find_map(|l| l.strip_prefix("failover_phase_seconds_sum{phase=\"vip_up\"} "))
            .unwrap();
        assert!((sum.parse::<f64>().unwrap() - 0.3005).abs() < 1e-9, "{sum}");
        assert!(!text.contains("gone"), "{text}");
    }

    #[test]
    fn endpoints_show_the_metrics_and_quorum_as_readiness() {
        let t = Telemetry::new();
        let get = |path: &str| {
            crate::telemetry::http::respond(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes(), &t).0
        };
        let not_ready = get("/readyz");
        assert_eq!(
            (not_ready.status, not_ready.body.as_str()),
            (503, "not quorate\n")
        );
        t.set_ready(true);
        t.metrics.quorate(true);
        let ready = get("/readyz");
        assert_eq!((ready.status, ready.body.as_str()), (200, "quorate\n"));
        let metrics = get("/metrics");
        assert!(
            metrics.body.lines().any(|l| l == "failover_quorum 1"),
            "{}",
            metrics.body
        );
    }

    #[test]
    fn state_is_the_latest_report_and_503_before_the_first() {
        use crate::contract::report::{AgentState, NodeReport};
        let t = Telemetry::new();
        let get = |path: &str| {
            crate::telemetry::http::respond(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes(), &t).0
        };
        let before = get("/state");
        assert_eq!(
            (before.status, before.body.as_str()),
            (
                503,
                "no report yet: the agent is starting or has no configuration\n"
            )
        );
        let mut report = NodeReport {
            config_hash: "00abcdef01234567".into(),
            ..NodeReport::default()
        };
        report.view.quorate = true;
        report.view.held.insert("web".into(), 4);
        report.explain.insert("web".into(), "a owns web".into());
        let state = AgentState {
            cluster: "ha/prod".into(),
            node: "a".into(),
            report,
        };
        t.set_state(Some(state.clone()));
        let served = get("/state");
        assert_eq!(
            (served.status, served.content_type),
            (200, "application/json")
        );
        let read: AgentState = serde_json::from_str(&served.body).unwrap();
        assert_eq!(read, state);
        // The report's fields side by side, as in the node Lease.
        let value: serde_json::Value = serde_json::from_str(&served.body).unwrap();
        assert_eq!(value["node"], "a");
        assert_eq!(value["configHash"], "00abcdef01234567");
        assert_eq!(value["view"]["held"]["web"], 4);
        assert_eq!(value["explain"]["web"], "a owns web");
        // The configuration deleted: no report again.
        t.set_state(None);
        assert_eq!(get("/state").status, 503);
        // A report no reader would accept is not sent.
        let mut huge = state;
        huge.report
            .explain
            .insert("big".into(), "x".repeat(MAX_STATE_BYTES));
        t.set_state(Some(huge));
        let refused = get("/state");
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (503, "the report is larger than a reader accepts\n")
        );
    }

    #[test]
    fn retain_config_drops_series_of_removed_members_and_groups() {
        let m = Metrics::default();
        m.peer("old", true);
        m.link("old", 0, true);
        m.link("n1", 2, true);
        m.owned("gone", true);
        m.resource_state("gone", "vip", ResourceState::Online);
        m.retain_config(["n1", "n2"], ["web"], 2);
        let text = m.render();
        assert!(!text.contains("old"), "{text}");
        assert!(!text.contains("gone"), "{text}");
        assert!(text.contains("failover_peer_up{member=\"n2\"} 0"), "{text}");
        assert!(
            text.contains("failover_heartbeat_link_up{peer=\"n2\",link=\"1\"} 0"),
            "{text}"
        );
        assert!(!text.contains("link=\"2\""), "{text}");
        assert!(
            text.contains("failover_group_owned{group=\"web\"} 0"),
            "{text}"
        );
    }
}
