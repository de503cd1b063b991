//! The Leases of the agent's Kubernetes mode (notes/k8s-contract.md): the group
//! ledger taken by compare-and-swap, the witness, and the node's heartbeat Lease.
//!
//! Owns the decisions (pure functions of the Lease read and the time) and the few
//! API calls that carry them out: GET by name, then PUT with the resourceVersion
//! read (an update with a precondition), or POST for the node Lease the first time —
//! exactly the verbs the operator's Role grants. It must never list or watch Leases,
//! never write a Lease of another cluster, and never decide ownership: a grant here
//! only records what the peers' votes decided.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use serde_json::json;
use tracing::{debug, info};

use crate::agent::runtime::Report;
use crate::engine::DRIFT_ALLOWANCE;
use crate::operator::names;

/// Why a Lease call failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("Lease {name}: API request failed")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Lease {name}: no answer within {timeout:?}")]
    Timeout { name: String, timeout: Duration },
    #[error("Lease {name}: changed by another writer twice in a row")]
    Conflict { name: String },
}

/// Why this node may not record itself in a group Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another holder recorded an epoch at least as high: this request is stale.
    StaleEpoch { holder: String, stored: i64 },
}

/// The answer of the group Lease to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Granted,
    /// Refused; `recorded` is the epoch the Lease holds when the claim was stale.
    Refused {
        recorded: Option<u64>,
    },
}

/// The ownership record this node wants to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub node: String,
    pub epoch: u64,
    /// `leaseDurationSeconds`: `deadAfter` rounded up.
    pub duration_secs: i32,
    /// Placement reason code.
    pub reason: String,
    pub message: String,
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

fn transitions(lease: &Lease) -> i64 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .map_or(0, i64::from)
}

/// `leaseTransitions` is an int32; an epoch beyond it is recorded as the maximum.
fn epoch_i32(epoch: u64) -> i32 {
    i32::try_from(epoch).unwrap_or(i32::MAX)
}

/// The group Lease with this node recorded as owner, or why not: granted when the
/// stored epoch is lower than the claim's or this node is already the holder (a
/// renewal, or a restart of the holder). The resourceVersion read stays in the
/// result, so the write is a compare-and-swap.
pub fn claim_group(current: &Lease, claim: &Claim, now: Timestamp) -> Result<Lease, Refusal> {
    let stored = transitions(current);
    let same = holder(current) == Some(claim.node.as_str());
    if !same && stored >= i64::try_from(claim.epoch).unwrap_or(i64::MAX) {
        return Err(Refusal::StaleEpoch {
            holder: holder(current).unwrap_or_default().to_owned(),
            stored,
        });
    }
    let mut lease = current.clone();
    let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(names::REASON.to_owned(), claim.reason.clone());
    annotations.insert(names::MESSAGE.to_owned(), claim.message.clone());
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if !same {
        spec.acquire_time = Some(MicroTime(now));
    }
    spec.holder_identity = Some(claim.node.clone());
    spec.lease_transitions = Some(epoch_i32(claim.epoch));
    spec.lease_duration_seconds = Some(claim.duration_secs);
    spec.renew_time = Some(MicroTime(now));
    Ok(lease)
}

/// The group Lease with a fresh renewTime, if this node still holds it with `epoch`
/// (another node's later record is left alone).
pub fn renew_group(current: &Lease, node: &str, epoch: u64, now: Timestamp) -> Option<Lease> {
    if holder(current) != Some(node) || transitions(current) != i64::from(epoch_i32(epoch)) {
        return None;
    }
    let mut lease = current.clone();
    lease.spec.get_or_insert_with(LeaseSpec::default).renew_time = Some(MicroTime(now));
    Some(lease)
}

/// The outcome of a witness request, in the agent's local monotonic time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessAnswer {
    pub held_until: Option<Duration>,
    pub other_until: Option<Duration>,
}

/// Until when a Lease of `duration_secs` taken by a request sent at local time
/// `sent` is surely ours: the API server may have written it at any point after
/// `sent`, and our clock may run up to [`DRIFT_ALLOWANCE`] slower than the others'.
pub fn held_until(sent: Duration, duration_secs: i32) -> Duration {
    let secs = f64::from(duration_secs.max(0)) * (1.0 - DRIFT_ALLOWANCE);
    sent + Duration::from_secs_f64(secs)
}

/// When another holder's Lease runs out, as wall time, if it says.
fn expires(lease: &Lease) -> Option<Timestamp> {
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = jiff::SignedDuration::from_secs(i64::from(spec.lease_duration_seconds?));
    renewed.checked_add(duration).ok()
}

/// The witness decision: the Lease to write when it is free, ours or expired
/// (holder = this node, renewed now), or the wall time the other holder's Lease runs
/// out (`None` in the error when the Lease does not say).
pub fn claim_witness(
    current: &Lease,
    node: &str,
    duration_secs: i32,
    now: Timestamp,
) -> Result<Lease, Option<Timestamp>> {
    let other = holder(current).filter(|h| !h.is_empty() && *h != node);
    if other.is_some() {
        match expires(current) {
            Some(at) if at <= now => {}
            at => return Err(at),
        }
    }
    let mut lease = current.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if holder(current) != Some(node) {
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(epoch_i32(
            u64::try_from(transitions(current)).unwrap_or(0) + 1,
        ));
    }
    spec.holder_identity = Some(node.to_owned());
    spec.lease_duration_seconds = Some(duration_secs);
    spec.renew_time = Some(MicroTime(now));
    Ok(lease)
}

/// Converts the other holder's expiry (wall time) to local monotonic time.
pub fn other_until(expiry: Timestamp, wall_now: Timestamp, local_now: Duration) -> Duration {
    let left = expiry.duration_since(wall_now);
    local_now + Duration::try_from(left).unwrap_or(Duration::ZERO)
}

/// The node Lease's annotations for a report, per the contract.
pub fn node_annotations(report: &Report) -> BTreeMap<String, String> {
    let view = json!({
        "quorate": report.quorate,
        "alive": report.alive,
        "held": report.held,
    });
    BTreeMap::from([
        (
            names::CONFIG_HASH.to_owned(),
            format!("{:016x}", report.config_hash),
        ),
        (names::VIEW.to_owned(), view.to_string()),
        (names::EXPLAIN.to_owned(), json!(report.explain).to_string()),
    ])
}

/// The node Lease as this node writes it: holder = node, renewed now, labelled with
/// the cluster, annotated with the report. `current` keeps its resourceVersion and
/// any other field.
pub fn node_lease(
    current: Option<Lease>,
    cluster: &str,
    node: &str,
    duration_secs: i32,
    report: &Report,
    now: Timestamp,
) -> Lease {
    let mut lease = current.unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(names::node_lease(cluster, node)),
            ..ObjectMeta::default()
        },
        ..Lease::default()
    });
    lease
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(names::CLUSTER_LABEL.to_owned(), cluster.to_owned());
    lease
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .extend(node_annotations(report));
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(node) {
        spec.acquire_time = Some(MicroTime(now));
    }
    spec.holder_identity = Some(node.to_owned());
    spec.lease_duration_seconds = Some(duration_secs);
    spec.renew_time = Some(MicroTime(now));
    lease
}

/// The Lease calls of one agent, each bounded by `timeout`.
#[derive(Clone)]
pub struct Leases {
    pub api: Api<Lease>,
    pub cluster: String,
    pub node: String,
    pub timeout: Duration,
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.is_conflict())
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.is_not_found())
}

impl Leases {
    async fn call<T>(
        &self,
        name: &str,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, LeaseError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(LeaseError::Api {
                name: name.to_owned(),
                source,
            }),
            Err(_) => Err(LeaseError::Timeout {
                name: name.to_owned(),
                timeout: self.timeout,
            }),
        }
    }

    async fn get(&self, name: &str) -> Result<Lease, LeaseError> {
        self.call(name, self.api.get(name)).await
    }

    /// PUT with the resourceVersion read: `Ok(None)` on a conflict (someone wrote
    /// in between).
    async fn swap(&self, name: &str, lease: &Lease) -> Result<Option<Lease>, LeaseError> {
        match self
            .call(name, self.api.replace(name, &PostParams::default(), lease))
            .await
        {
            Ok(lease) => Ok(Some(lease)),
            Err(LeaseError::Api { source, .. }) if is_conflict(&source) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records this node as owner of the group: read, decide, compare-and-swap; on
    /// a conflict reads and decides once more. `Ok(false)`: refused.
    pub async fn take_group(&self, group: &str, claim: &Claim) -> Result<Taken, LeaseError> {
        let name = names::group_lease(&self.cluster, group);
        for attempt in 0..2 {
            let current = self.get(&name).await?;
            let lease = match claim_group(&current, claim, Timestamp::now()) {
                Ok(lease) => lease,
                Err(refusal) => {
                    info!(group, epoch = claim.epoch, ?refusal, "group Lease refused");
                    let Refusal::StaleEpoch { stored, .. } = refusal;
                    return Ok(Taken::Refused {
                        recorded: u64::try_from(stored).ok(),
                    });
                }
            };
            if self.swap(&name, &lease).await?.is_some() {
                return Ok(Taken::Granted);
            }
            debug!(
                group,
                attempt, "group Lease changed under us; reading it again"
            );
        }
        info!(
            group,
            epoch = claim.epoch,
            "group Lease kept changing; refused"
        );
        Ok(Taken::Refused { recorded: None })
    }

    /// Refreshes renewTime of a group Lease this node holds with `epoch`.
    pub async fn renew_group(&self, group: &str, epoch: u64) -> Result<(), LeaseError> {
        let name = names::group_lease(&self.cluster, group);
        let current = self.get(&name).await?;
        if let Some(lease) = renew_group(&current, &self.node, epoch, Timestamp::now()) {
            self.swap(&name, &lease).await?;
        }
        Ok(())
    }

    /// Acquires or renews the witness Lease. `sent` is the local time the request
    /// started (`local_now` gives the current one): the answer counts from it.
    pub async fn witness(
        &self,
        duration_secs: i32,
        sent: Duration,
        local_now: impl Fn() -> Duration,
    ) -> Result<WitnessAnswer, LeaseError> {
        let name = names::witness_lease(&self.cluster);
        for _ in 0..2 {
            let current = self.get(&name).await?;
            let now = Timestamp::now();
            match claim_witness(&current, &self.node, duration_secs, now) {
                Ok(lease) => {
                    if self.swap(&name, &lease).await?.is_some() {
                        return Ok(WitnessAnswer {
                            held_until: Some(held_until(sent, duration_secs)),
                            other_until: None,
                        });
                    }
                }
                Err(expiry) => {
                    return Ok(WitnessAnswer {
                        held_until: None,
                        other_until: expiry.map(|at| other_until(at, now, local_now())),
                    });
                }
            }
        }
        Ok(WitnessAnswer {
            held_until: None,
            other_until: None,
        })
    }

    /// Renews the node Lease from `last` (the object last written, if any),
    /// creating it when it does not exist; returns what the API server stored.
    pub async fn renew_node(
        &self,
        last: Option<Lease>,
        duration_secs: i32,
        report: &Report,
    ) -> Result<Lease, LeaseError> {
        let name = names::node_lease(&self.cluster, &self.node);
        let render = |current| {
            node_lease(
                current,
                &self.cluster,
                &self.node,
                duration_secs,
                report,
                Timestamp::now(),
            )
        };
        let current = match last {
            Some(lease) => Some(lease),
            None => match self.get(&name).await {
                Ok(lease) => Some(lease),
                Err(LeaseError::Api { source, .. }) if is_not_found(&source) => None,
                Err(e) => return Err(e),
            },
        };
        let Some(current) = current else {
            info!(lease = name, "creating the node Lease");
            let lease = render(None);
            return self
                .call(&name, self.api.create(&PostParams::default(), &lease))
                .await;
        };
        if let Some(stored) = self.swap(&name, &render(Some(current))).await? {
            return Ok(stored);
        }
        // Our copy was stale (another writer, or a restart): read and write again.
        let current = self.get(&name).await?;
        self.swap(&name, &render(Some(current)))
            .await?
            .ok_or(LeaseError::Conflict { name })
    }
}
