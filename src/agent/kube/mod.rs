//! The agent's Kubernetes mode (`failover agent --cluster NAME`): the shared event
//! loop of `agent::runtime` fed from the API server instead of a file.
//!
//! Owns the watches of the cluster's ClusterConfig ConfigMap and heartbeat Secret
//! (by name, as the operator's Role allows; `contract::source` reads their data),
//! the group-Lease records, the witness, the node Lease and the Events, all per
//! notes/k8s-contract.md and `contract::names`. Every API call runs
//! in a task under a timeout and answers the loop through the updates channel: the
//! loop never waits on the API server, and through an outage it keeps running on the
//! last configuration and keys, and takes groups over with the majority alone
//! (DESIGN.md section 5; only `witness` quorum needs the API, for the witness Lease,
//! and not even that when `spec.witness` names a `failover witness` process: then
//! the standalone mode's witness client asks it, with the heartbeat Secret's keys).
//! The group Leases record what the majority decided when the API answers
//! (`lease` module doc); the node Lease reports every change at once. A deleted
//! ClusterConfig takes every group offline until it comes back. It must never
//! decide ownership, never create a Lease (the operator does), and never start the
//! loop before a valid configuration and key arrived (until then the node holds
//! nothing).

pub mod lease;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use kube::api::Api;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, error, info, info_span, warn};

use self::lease::{LeaseError, Leases, Record, Recorded};
use super::resources::Repair;
use super::runtime::{
    self, AgentError, Backend, LoopOptions, Notice, Report, Update, WitnessAsk, WitnessClient,
};
use super::timeline::millis;
use crate::api::FailoverCluster;
use crate::api::conditions::event;
use crate::api::duration::whole_seconds_up_i32;
use crate::contract::client::{ClientError, client_from};
use crate::contract::events::takeover_event;
use crate::contract::model::AgentConfig;
use crate::contract::names;
use crate::contract::report::ResourceReason;
use crate::contract::source::{SourceError, parse_config_map, parse_secret};
use crate::engine::{Input, WitnessRef};
use crate::membership::Keyring;
use crate::placement::ClusterModel;
use crate::telemetry::error_report;

/// The longest any single API call may take; shorter when `deadAfter` is.
const API_TIMEOUT: Duration = Duration::from_secs(2);
/// The node Lease is renewed at most this often, however short the interval...
const NODE_RENEW_MIN: Duration = Duration::from_millis(250);
/// ...and at least this often: the operator shows a member Offline when its
/// renewTime is older than deadAfter + 1 s.
const NODE_RENEW_MAX: Duration = Duration::from_secs(1);
/// A change of the node's state (config hash, quorum, peers, groups owned) is
/// written to the node Lease at once, but never sooner than this after the last
/// write: a flapping state costs at most ten writes a second per node.
const CHANGE_FLOOR: Duration = Duration::from_millis(100);
/// A failed group-record write or read is retried after this, doubling per failure
/// in a row...
const RETRY_MIN: Duration = Duration::from_millis(200);
/// ...up to this, for as long as the API server does not answer.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// The same Event (reason and group) is published at most once per this period.
const EVENT_SPACING: Duration = Duration::from_secs(10);

/// Why the Kubernetes mode stopped.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot reach the Kubernetes API")]
    Client(#[source] ClientError),
    #[error("the agent loop failed")]
    Agent(#[source] AgentError),
    #[error("cannot install signal handlers")]
    Signal(#[source] std::io::Error),
}

/// What `failover agent --cluster` needs.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    pub cluster: String,
    /// The cluster's namespace; `None`: the client's default namespace.
    pub namespace: Option<String>,
    pub node: String,
    pub kubeconfig: Option<PathBuf>,
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Timing of the API work, from the running configuration's heartbeat settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Group and witness `leaseDurationSeconds`: `deadAfter` rounded up.
    pub duration_secs: i32,
    /// Per API call (and per ledger or witness request): min(deadAfter, 2 s).
    pub timeout: Duration,
    /// Node Lease renewal period: the interval, within 250 ms..1 s.
    pub renew_every: Duration,
}

impl Timing {
    pub fn of(model: &ClusterModel) -> Self {
        Timing {
            duration_secs: whole_seconds_up_i32(model.dead_after),
            timeout: model.dead_after.min(API_TIMEOUT),
            renew_every: model.interval.clamp(NODE_RENEW_MIN, NODE_RENEW_MAX),
        }
    }
}

/// The FailoverCluster the ConfigMap belongs to (its controller ownerReference), as
/// the object the agent's Events are about.
pub fn cluster_reference(cm: &ConfigMap) -> Option<ObjectReference> {
    let owner = cm
        .owner_references()
        .iter()
        .find(|o| o.kind == FailoverCluster::kind(&()))?;
    Some(ObjectReference {
        api_version: Some(owner.api_version.clone()),
        kind: Some(owner.kind.clone()),
        name: Some(owner.name.clone()),
        namespace: cm.namespace(),
        uid: Some(owner.uid.clone()),
        ..ObjectReference::default()
    })
}

/// The Event for a notice: (type, reason, note).
pub fn event_for(node: &str, notice: &Notice) -> (EventType, &'static str, String) {
    match notice {
        Notice::Took { message, takeover } => {
            let (warning, kind) = takeover_event(Some(takeover.reason));
            let type_ = if warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            let phases: Vec<String> = takeover
                .phases
                .iter()
                .map(|&(phase, since)| format!("{} {:.1} ms", phase.label(), millis(since)))
                .collect();
            let note = format!(
                "{node} took group {} ({}): {message}; timeline from the {}: {}",
                takeover.group,
                takeover.reason.code(),
                takeover.origin.label(),
                phases.join(", ")
            );
            (type_, kind, note)
        }
        Notice::Fenced { group } => (
            EventType::Warning,
            event::FENCED,
            format!(
                "{node} stopped group {group}: its votes were about to lapse (quorum lost or partitioned)"
            ),
        ),
        Notice::ResourceFailed(repair) => {
            let Repair {
                group,
                resource,
                reason,
                message,
                restarts,
                failed_over,
            } = repair;
            let (code, then) = if *failed_over {
                (
                    ResourceReason::RestartLimitReached.code(),
                    format!(
                        "restart limit reached after {restarts} restart(s); the group fails over"
                    ),
                )
            } else {
                (
                    reason.code(),
                    format!("restarted in place (restart {restarts})"),
                )
            };
            let note = format!(
                "{node}: resource {resource} of group {group} failed ({}: {message}); {then}",
                reason.code()
            );
            (EventType::Warning, code, note)
        }
        Notice::QuorumLost => (
            EventType::Warning,
            event::QUORUM_LOST,
            format!("{node} lost quorum"),
        ),
        Notice::QuorumGained => (
            EventType::Normal,
            event::QUORUM_REGAINED,
            format!("{node} is quorate"),
        ),
    }
}

/// What a watch of one object by name saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen<K> {
    /// A version of the object (after relists too).
    Present(K),
    /// It was deleted, or a (re)list found it absent.
    Absent,
}

/// The news in one watcher event for a watch of one object by name; `listed`
/// tracks whether the (re)list in progress found the object.
pub fn seen<K>(event: watcher::Event<K>, listed: &mut bool) -> Option<Seen<K>> {
    match event {
        watcher::Event::Apply(object) => Some(Seen::Present(object)),
        watcher::Event::Delete(_) => Some(Seen::Absent),
        watcher::Event::Init => {
            *listed = false;
            None
        }
        watcher::Event::InitApply(object) => {
            *listed = true;
            Some(Seen::Present(object))
        }
        watcher::Event::InitDone => (!*listed).then_some(Seen::Absent),
    }
}

/// Watches one object by name; yields every version seen (after relists too) and
/// its absence (deleted, or not found by a relist).
fn watch_named<K>(api: Api<K>, name: &str) -> impl Stream<Item = Seen<K>> + Send
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let what = format!("{}/{name}", K::kind(&Default::default()));
    let mut listed = false;
    watcher(api, config)
        .default_backoff()
        .filter_map(move |result| {
            let news = match result {
                Ok(event) => seen(event, &mut listed),
                Err(error) => {
                    // The watcher retries with backoff; the agent keeps running.
                    warn!(object = what, error = %error_report(&error), "watch failed; retrying");
                    None
                }
            };
            std::future::ready(news)
        })
}

/// Feeds the loop from the ConfigMap and Secret watches.
async fn watch_sources(
    client: Client,
    namespace: String,
    cluster: String,
    updates: mpsc::Sender<Update>,
    timing: watch::Sender<Option<Timing>>,
    reference: watch::Sender<Option<ObjectReference>>,
) {
    let config_name = names::config_map(&cluster);
    let secret_name = names::heartbeat_secret(&cluster);
    let configs =
        watch_named::<ConfigMap>(Api::namespaced(client.clone(), &namespace), &config_name);
    let secrets = watch_named::<Secret>(Api::namespaced(client, &namespace), &secret_name);
    let mut configs = std::pin::pin!(configs);
    let mut secrets = std::pin::pin!(secrets);
    let mut config_seen = false;
    let mut last_keys: Option<(Vec<u8>, Option<Vec<u8>>)> = None;
    loop {
        let update = tokio::select! {
            Some(seen) = configs.next() => {
                let cm = match seen {
                    Seen::Present(cm) => cm,
                    // Absent before the first version is only "not created yet".
                    Seen::Absent if std::mem::take(&mut config_seen) => {
                        if updates.send(Update::ConfigDeleted).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Seen::Absent => {
                        info!(configmap = config_name, "ClusterConfig not found; waiting for it");
                        continue;
                    }
                };
                reference.send_replace(cluster_reference(&cm));
                match parse_config_map(&cm) {
                    Ok((mut config, values)) => {
                        // The clear values travel with the configuration: the engine
                        // acts on a value it has not seen, so a restarted agent counts
                        // from the same clear as its peers.
                        config.clear_failures = values;
                        config_seen = true;
                        timing.send_replace(Some(Timing::of(&config.model)));
                        Update::Config(Box::new(config))
                    }
                    Err(error) => {
                        if let SourceError::Config { name, source } = error {
                            runtime::log_config_error(&AgentError::Config {
                                origin: format!("ConfigMap {namespace}/{name}"),
                                source,
                            });
                        } else {
                            error!(error = %error_report(&error), "configuration rejected");
                        }
                        warn!("keeping the running configuration");
                        continue;
                    }
                }
            }
            Some(seen) = secrets.next() => {
                let Seen::Present(secret) = seen else {
                    warn!(secret = secret_name, "heartbeat Secret not found; keeping the running keys");
                    continue;
                };
                match parse_secret(&secret) {
                    Ok((keys, raw)) => {
                        // Relists repeat the same Secret: only a change is news.
                        if last_keys.as_ref() == Some(&raw) {
                            continue;
                        }
                        last_keys = Some(raw);
                        Update::Keys(keys)
                    }
                    Err(error) => {
                        error!(error = %error_report(&error), "heartbeat keys rejected; keeping the running ones");
                        continue;
                    }
                }
            }
            else => return,
        };
        if updates.send(update).await.is_err() {
            return;
        }
    }
}

/// The backend of the Kubernetes mode: spawns every API call.
struct KubeBackend {
    leases: Leases,
    /// Asks `failover witness` when the configuration names one (`spec.witness`).
    witness: WitnessClient,
    updates: mpsc::Sender<Update>,
    timing: watch::Receiver<Option<Timing>>,
    start: Instant,
    reports: watch::Sender<Option<Report>>,
    notices: mpsc::Sender<Notice>,
}

impl KubeBackend {
    fn timing(&self) -> Timing {
        self.timing.borrow().unwrap_or(Timing {
            duration_secs: 1,
            timeout: API_TIMEOUT,
            renew_every: NODE_RENEW_MAX,
        })
    }

    fn leases(&self, timing: Timing) -> Leases {
        Leases {
            timeout: timing.timeout,
            ..self.leases.clone()
        }
    }
}

impl Backend for KubeBackend {
    // The witness is `failover witness` when the configuration names one (a third
    // location can break a tie the API server, itself on one side, cannot), else
    // the Lease; the configuration's timing arrives through the `timing` watch.
    fn witness_request(&mut self, ask: WitnessAsk<'_>) -> bool {
        // The witness named by the request, not the running configuration's:
        // during a change of witness the old one is asked too.
        if let WitnessRef::Process(_) = ask.witness {
            self.witness.request(&ask);
            return true;
        }
        let timing = self.timing();
        let leases = self.leases(timing);
        let updates = self.updates.clone();
        let start = self.start;
        let sent = start.elapsed();
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(
                timing.timeout,
                leases.witness(timing.duration_secs, sent, || start.elapsed()),
            )
            .await
            {
                Ok(Ok(answer)) => answer,
                Ok(Err(error)) => {
                    warn!(error = %error_report(&error), "witness request failed");
                    lease::WitnessAnswer {
                        held_until: None,
                        other_until: None,
                    }
                }
                Err(_) => {
                    warn!(timeout = ?timing.timeout, "witness request unanswered");
                    lease::WitnessAnswer {
                        held_until: None,
                        other_until: None,
                    }
                }
            };
            debug!(?answer, "witness answer");
            let _ = updates
                .send(Update::Engine(Input::Witness {
                    witness: WitnessRef::Lease,
                    held_until: answer.held_until,
                    other_until: answer.other_until,
                }))
                .await;
        });
        true
    }

    fn notice(&mut self, notice: Notice) {
        // Events are best effort: a full queue drops them rather than wait.
        if self.notices.try_send(notice).is_err() {
            debug!("event queue full; event dropped");
        }
    }

    fn report_every(&self) -> Option<Duration> {
        Some(NODE_RENEW_MIN)
    }

    fn report(&mut self, report: Option<Report>) {
        self.reports.send_replace(report);
    }
}

/// What of a report makes the node Lease out of date at once (the explanations
/// follow with the next periodic write). A finished takeover is news: status shows
/// its timeline without waiting for the renewal.
fn news(report: &Report) -> impl PartialEq + '_ {
    (
        report.config_hash,
        report.quorate,
        &report.alive,
        &report.owned,
        &report.takeovers,
    )
}

/// When the node Lease is written next: at once for the first report; for a change,
/// [`CHANGE_FLOOR`] after the last write; otherwise (and after a failure) one
/// renewal period after it. `None`: no report (the configuration was deleted).
pub fn node_write_due(
    report: Option<&Report>,
    last: Option<(Instant, Option<&Report>)>,
    renew_every: Duration,
) -> Option<Instant> {
    let report = report?;
    let Some((at, stored)) = last else {
        return Some(Instant::now());
    };
    Some(match stored {
        Some(stored) if news(stored) != news(report) => at + CHANGE_FLOOR,
        _ => at + renew_every,
    })
}

/// Sleeps until `due` (for good when `None`) or until the report changes, whichever
/// comes first; false when the report channel closed (the agent is stopping).
async fn due_or_changed(
    reports: &mut watch::Receiver<Option<Report>>,
    due: Option<Instant>,
) -> bool {
    let wait = async {
        match due {
            Some(due) => tokio::time::sleep_until(due.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        changed = reports.changed() => changed.is_ok(),
        () = wait => true,
    }
}

/// Writes the node Lease: every report change at once (spaced by [`CHANGE_FLOOR`])
/// and a renewal every `renew_every`. Never creates it; failures (a missing Lease
/// included) are logged once per streak, retried at the renewal period, and never
/// fence. Writes nothing while the configuration is deleted.
async fn write_node_lease(
    leases: Leases,
    mut reports: watch::Receiver<Option<Report>>,
    timing: watch::Receiver<Option<Timing>>,
) {
    let mut stored: Option<Lease> = None;
    // When the last write was tried, and the report it stored (None: it failed).
    let mut last: Option<(Instant, Option<Report>)> = None;
    let mut failing = false;
    loop {
        let Some(t) = *timing.borrow() else {
            tokio::time::sleep(NODE_RENEW_MAX).await;
            continue;
        };
        let report = reports.borrow_and_update().clone();
        let due = node_write_due(
            report.as_ref(),
            last.as_ref().map(|(at, r)| (*at, r.as_ref())),
            t.renew_every,
        );
        let Some(report) = report.filter(|_| due.is_some_and(|d| d <= Instant::now())) else {
            if !due_or_changed(&mut reports, due).await {
                return;
            }
            continue;
        };
        let leases = Leases {
            timeout: t.timeout,
            ..leases.clone()
        };
        let started = Instant::now();
        match leases
            .renew_node(stored.take(), t.duration_secs, &report)
            .await
        {
            Ok(lease) => {
                stored = Some(lease);
                last = Some((started, Some(report)));
                if std::mem::take(&mut failing) {
                    info!("node Lease writes work again");
                }
            }
            Err(error) => {
                last = Some((started, None));
                if !std::mem::replace(&mut failing, true) {
                    match &error {
                        LeaseError::Missing { name } => warn!(
                            lease = name,
                            "node Lease missing (the operator creates it); retrying every renewal period"
                        ),
                        _ => {
                            warn!(error = %error_report(&error), "node Lease write failed (logged once until it works again); running on")
                        }
                    }
                }
            }
        }
    }
}

/// The group-record writer's state for one group.
#[derive(Debug, Default)]
struct GroupRecord {
    /// The epoch this node's record was stored with (this take).
    written: Option<u64>,
    /// The epoch of the last attempt to write it.
    attempted: Option<u64>,
    /// The Lease's epoch was read (or our record written): the engine has its floor.
    floored: bool,
    /// Next attempt (write, renewal, retry or floor read).
    next: Option<Instant>,
    /// Failures in a row.
    failures: u32,
}

/// The bounded backoff after `failures` failures in a row.
pub fn retry_after(failures: u32) -> Duration {
    RETRY_MIN
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(RETRY_MAX)
}

/// Keeps the group Leases recording what the majority decided (`lease` module doc):
/// for every group this node runs, writes its record at once after the take and
/// renews it every half `leaseDurationSeconds` (at least 1 s); for every other
/// group, reads the recorded epoch once, as the engine's floor. Failures are retried
/// with a bounded backoff ([`retry_after`]) and never delay or stop a group; a
/// deleted configuration stops everything.
async fn record_groups(
    leases: Leases,
    mut reports: watch::Receiver<Option<Report>>,
    timing: watch::Receiver<Option<Timing>>,
    updates: mpsc::Sender<Update>,
) {
    let mut groups: BTreeMap<String, GroupRecord> = BTreeMap::new();
    let mut failing = false;
    loop {
        let (Some(t), Some(report)) = (*timing.borrow(), reports.borrow_and_update().clone())
        else {
            if reports.changed().await.is_err() {
                return;
            }
            continue;
        };
        let renew = (Duration::from_secs(u64::try_from(t.duration_secs).unwrap_or(1)) / 2)
            .max(NODE_RENEW_MAX);
        // The report's explanations cover every group of the configuration.
        groups.retain(|g, _| report.explain.contains_key(g));
        for group in report.explain.keys() {
            let state = groups.entry(group.clone()).or_default();
            match report.owned.get(group) {
                // A new take (or a raised epoch): write at once.
                Some(o) if state.written != Some(o.epoch) && state.attempted != Some(o.epoch) => {
                    state.next = Some(Instant::now());
                }
                Some(_) => {}
                None => {
                    state.written = None;
                    state.attempted = None;
                    if state.floored {
                        state.next = None;
                    } else {
                        state.next.get_or_insert_with(Instant::now);
                    }
                }
            }
        }
        let now = Instant::now();
        let due = groups
            .iter()
            .filter_map(|(g, s)| s.next.map(|at| (at, g.clone())))
            .min();
        let Some((_, group)) = due.clone().filter(|(at, _)| *at <= now) else {
            if !due_or_changed(&mut reports, due.map(|(at, _)| at)).await {
                return;
            }
            continue;
        };
        let leases = Leases {
            timeout: t.timeout,
            ..leases.clone()
        };
        let Some(state) = groups.get_mut(&group) else {
            continue;
        };
        let result = match report.owned.get(&group) {
            Some(owned) => {
                let record = Record {
                    node: leases.node.clone(),
                    epoch: owned.epoch,
                    duration_secs: t.duration_secs,
                    reason: owned.reason.code().to_owned(),
                    message: owned.message.clone(),
                    // The runtime reports when it took every group it runs; the
                    // type allows no time only for what other agents' reports lack.
                    since: owned.since.unwrap_or_else(Timestamp::now),
                };
                let written = state.written == Some(owned.epoch);
                state.attempted = Some(owned.epoch);
                leases
                    .record_group(&group, &record, written)
                    .await
                    .map(|recorded| (Some(owned.epoch), recorded))
            }
            None => leases
                .read_epoch(&group)
                .await
                .map(|epoch| (None, Recorded::Floor(epoch))),
        };
        let input = match result {
            Err(error) => {
                state.failures += 1;
                state.next = Some(Instant::now() + retry_after(state.failures));
                if !std::mem::replace(&mut failing, true) {
                    warn!(group, error = %error_report(&error), "group Lease not written or read (logged once until it works again); ownership goes on without it, retrying");
                }
                debug!(group, failures = state.failures, error = %error_report(&error), "group Lease attempt failed");
                continue;
            }
            Ok((epoch, recorded)) => {
                if std::mem::take(&mut failing) {
                    info!(group, "group Lease writes work again");
                }
                state.failures = 0;
                state.floored = true;
                match (epoch, recorded) {
                    (Some(epoch), Recorded::Written) => {
                        if state.written != Some(epoch) {
                            info!(group, epoch, "group Lease records this node as owner");
                        }
                        state.written = Some(epoch);
                        state.next = Some(Instant::now() + renew);
                        None
                    }
                    (None, Recorded::Floor(epoch)) => {
                        state.next = None;
                        (epoch > 0).then(|| Input::Recorded {
                            group: group.clone(),
                            epoch,
                        })
                    }
                    (Some(ours), Recorded::Floor(epoch)) => {
                        info!(
                            group,
                            ours,
                            recorded = epoch,
                            "group Lease records an epoch not below ours from before our take; raising ours above it"
                        );
                        // The engine raises the epoch; the new report wakes us.
                        state.next = Some(Instant::now() + RETRY_MIN);
                        Some(Input::Recorded {
                            group: group.clone(),
                            epoch,
                        })
                    }
                    (Some(ours), Recorded::Superseded { holder, epoch }) => {
                        warn!(
                            group,
                            ours,
                            holder,
                            recorded = epoch,
                            "group Lease records another owner over our record: fencing"
                        );
                        state.next = Some(Instant::now() + renew);
                        Some(Input::Superseded {
                            group: group.clone(),
                            epoch: ours,
                        })
                    }
                    (None, _) => None,
                }
            }
        };
        if let Some(input) = input
            && updates.send(Update::Engine(input)).await.is_err()
        {
            return;
        }
    }
}

/// Publishes notices as Events on the FailoverCluster, each (reason, subject) at most
/// once per [`EVENT_SPACING`].
async fn publish_events(
    recorder: Recorder,
    node: String,
    mut notices: mpsc::Receiver<Notice>,
    reference: watch::Receiver<Option<ObjectReference>>,
) {
    let mut last: BTreeMap<String, Instant> = BTreeMap::new();
    while let Some(notice) = notices.recv().await {
        let (type_, reason, note) = event_for(&node, &notice);
        let subject = match &notice {
            Notice::Took { takeover, .. } => takeover.group.as_str(),
            Notice::Fenced { group } => group.as_str(),
            Notice::ResourceFailed(repair) => repair.group.as_str(),
            _ => "",
        };
        let key = format!("{reason}/{subject}");
        if last.get(&key).is_some_and(|t| t.elapsed() < EVENT_SPACING) {
            continue;
        }
        last.insert(key, Instant::now());
        let Some(reference) = reference.borrow().clone() else {
            continue;
        };
        let event = KubeEvent {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        match tokio::time::timeout(API_TIMEOUT, recorder.publish(&event, &reference)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => debug!(error = %error_report(&error), "cannot publish Event"),
            Err(_) => debug!("Event publish timed out"),
        }
    }
}

/// Runs the agent of `options.node` for the cluster until SIGTERM/SIGINT and a
/// graceful leave.
pub async fn run(options: KubeOptions) -> Result<(), KubeError> {
    let client = client_from(options.kubeconfig.as_deref(), API_TIMEOUT)
        .await
        .map_err(KubeError::Client)?;
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let span = info_span!("agent", cluster = %format!("{namespace}/{}", options.cluster), node = %options.node);
    run_with(client, namespace, options).instrument(span).await
}

async fn run_with(
    client: Client,
    namespace: String,
    options: KubeOptions,
) -> Result<(), KubeError> {
    let (updates_tx, mut updates) = mpsc::channel(64);
    let (timing_tx, timing) = watch::channel(None);
    let (reference_tx, reference) = watch::channel(None);
    tokio::spawn(watch_sources(
        client.clone(),
        namespace.clone(),
        options.cluster.clone(),
        updates_tx.clone(),
        timing_tx,
        reference_tx,
    ));

    // Hold nothing until both a valid configuration and a key arrived.
    info!(
        configmap = names::config_map(&options.cluster),
        secret = names::heartbeat_secret(&options.cluster),
        "waiting for the configuration and the heartbeat key"
    );
    let mut term = signal(SignalKind::terminate()).map_err(KubeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(KubeError::Signal)?;
    let (mut config, mut keys): (Option<AgentConfig>, Option<Keyring>) = (None, None);
    let (config, keys) = loop {
        if let (Some(c), Some(k)) = (&config, &keys) {
            break (c.clone(), k.clone());
        }
        tokio::select! {
            update = updates.recv() => match update {
                Some(Update::Config(c)) => match c.links_of(&options.node) {
                    Ok(_) => config = Some(*c),
                    Err(error) => error!(error = %error_report(&error), "this node is not a member; waiting for a configuration that names it"),
                },
                Some(Update::Keys(k)) => keys = Some(k),
                Some(_) => {}
                None => return Ok(()),
            },
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    };
    drop((term, int));

    let api: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let leases = Leases {
        api,
        cluster: options.cluster.clone(),
        node: options.node.clone(),
        timeout: API_TIMEOUT,
    };
    let (reports_tx, reports) = watch::channel(None);
    let (notices_tx, notices) = mpsc::channel(64);
    tokio::spawn(write_node_lease(
        leases.clone(),
        reports.clone(),
        timing.clone(),
    ));
    tokio::spawn(record_groups(
        leases.clone(),
        reports,
        timing.clone(),
        updates_tx.clone(),
    ));
    let reporter = Reporter {
        controller: names::APP_AGENT.to_owned(),
        instance: Some(options.node.clone()),
    };
    tokio::spawn(publish_events(
        Recorder::new(client, reporter),
        options.node.clone(),
        notices,
        reference,
    ));
    let start = Instant::now();
    let backend = KubeBackend {
        leases,
        witness: WitnessClient::new(updates_tx.clone(), start),
        updates: updates_tx,
        timing,
        start,
        reports: reports_tx,
        notices: notices_tx,
    };
    let loop_options = LoopOptions {
        node: options.node,
        keys,
        metrics_addr: options.metrics_addr,
        origin: format!(
            "ConfigMap {namespace}/{}",
            names::config_map(&options.cluster)
        ),
        start,
        updates: Some(updates),
        backend: Box::new(backend),
        // The configuration comes from the API server, never from a push.
        accept_pushes: false,
    };
    runtime::run_loop(loop_options, config, None)
        .await
        .map_err(KubeError::Agent)
}

#[cfg(test)]
mod tests;
