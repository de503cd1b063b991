//! The Leases of the agent's Kubernetes mode (notes/k8s-contract.md): the group
//! records, the witness, and the node's Lease (its report in `contract::report`'s
//! form).
//!
//! Owns the decisions (pure functions of the Lease read and the time) and the few
//! API calls that carry them out: GET by name, then PUT with the resourceVersion
//! read (an update with a precondition) — the verbs the operator's Role grants. It
//! never creates a Lease (the operator creates and owns them all: a missing one is
//! an error the caller retries), never lists or watches Leases, never writes a Lease
//! of another cluster, and never decides ownership.
//!
//! # The group Lease is a record, not the ledger
//!
//! The quorate majority decides who owns a group (`engine`); the owner then writes
//! the group Lease (holder = node, `leaseTransitions` = epoch, reason and message
//! annotations, `acquireTime` = when it took the group) whenever the API server
//! answers. A takeover never waits for it. [`record_group`] compares the Lease with
//! this node's record:
//!
//! - lower epoch (any holder): written; this very record, once written: renewed;
//! - an epoch at least ours that is not ours, **before** ours was written: a record
//!   from before our take — the last owner before every agent restarted (engines'
//!   epochs start low again), or a take whose epoch did not reach our voters. It is a
//!   floor ([`Verdict::Floor`]): the engine raises our epoch above it
//!   (`Input::Recorded`) and we write that. A stale record never fences an owner.
//! - the same, **after** ours was written: someone wrote over our record, so it
//!   was written after our take: another node has taken the group over since
//!   (DESIGN.md: "a group Lease that records another node at a higher epoch"), and
//!   we fence ([`Verdict::Superseded`], `Input::Superseded`). The majority's votes
//!   already keep two owners apart; this is the second line. If two nodes ever did
//!   run a group at once, the one that writes second raises its epoch over the
//!   first's (a floor for it), and the first, whose record was written, fences: one
//!   of them stops at the first write of the second, not both.
//!
//! "Written" is per take and per agent process: a restarted agent has written
//! nothing, so whatever its Lease holds is a floor for it — its own name at its own
//! epoch too (a record of its previous run, or of a write whose answer was lost): the
//! epoch then rises once more, so that a new take never leaves the record unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use tracing::debug;

use crate::agent::runtime::Report;
use crate::contract::names;
use crate::engine::witness_held_until;

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
    #[error("Lease {name} does not exist (the operator creates it)")]
    Missing { name: String },
}

/// This node's record of its ownership of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub node: String,
    pub epoch: u64,
    /// `leaseDurationSeconds`: `deadAfter` rounded up.
    pub duration_secs: i32,
    /// Placement reason code.
    pub reason: String,
    pub message: String,
    /// When this node took the group (`acquireTime`).
    pub since: Timestamp,
}

/// What the group Lease says against this node's record.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Write this (our record, renewed now; the resourceVersion read kept).
    Write(Box<Lease>),
    /// The Lease names `epoch`, at least ours, and ours was never written: raise ours.
    Floor(u64),
    /// The Lease names `holder` at `epoch`, at least ours, over our written record.
    Superseded { holder: String, epoch: u64 },
}

/// What a record write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Written,
    Floor(u64),
    Superseded { holder: String, epoch: u64 },
}

fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

/// The epoch a Lease records (`leaseTransitions`, 0 when absent or negative).
pub fn recorded_epoch(lease: &Lease) -> u64 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(0)
}

/// `leaseTransitions` is an int32; an epoch beyond it is recorded as the maximum.
fn epoch_i32(epoch: u64) -> i32 {
    i32::try_from(epoch).unwrap_or(i32::MAX)
}

/// The decision of the module doc: `written` says whether this node's record of
/// this take (this epoch) was already stored.
pub fn record_group(current: &Lease, record: &Record, written: bool, now: Timestamp) -> Verdict {
    let stored = recorded_epoch(current);
    // What `leaseTransitions` can hold of our epoch.
    let epoch = record.epoch.min(i32::MAX as u64);
    let ours = written && holder(current) == Some(record.node.as_str()) && stored == epoch;
    if !ours && stored >= epoch {
        return if written {
            Verdict::Superseded {
                holder: holder(current).unwrap_or_default().to_owned(),
                epoch: stored,
            }
        } else {
            Verdict::Floor(stored)
        };
    }
    let mut lease = current.clone();
    let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(names::REASON.to_owned(), record.reason.clone());
    annotations.insert(names::MESSAGE.to_owned(), record.message.clone());
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if !ours {
        spec.acquire_time = Some(MicroTime(record.since));
    }
    spec.holder_identity = Some(record.node.clone());
    spec.lease_transitions = Some(epoch_i32(record.epoch));
    spec.lease_duration_seconds = Some(record.duration_secs);
    spec.renew_time = Some(MicroTime(now));
    Verdict::Write(Box::new(lease))
}

/// The outcome of a witness request, in the agent's local monotonic time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessAnswer {
    pub held_until: Option<Duration>,
    pub other_until: Option<Duration>,
}

/// Until when a Lease of `duration_secs` taken by a request sent at local time
/// `sent` is surely ours ([`witness_held_until`]: the API server may have written it
/// at any point after `sent`).
pub fn held_until(sent: Duration, duration_secs: i32) -> Duration {
    let secs = u64::try_from(duration_secs).unwrap_or(0);
    witness_held_until(sent, Duration::from_secs(secs))
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
    let other = holder(current).filter(|h| *h != node);
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
        spec.lease_transitions = Some(epoch_i32(recorded_epoch(current) + 1));
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

/// The node Lease as this node writes it over `current` (as the operator created
/// it): holder = node, renewed now, annotated with the report (one annotation per
/// field of `contract::report::NodeReport`). Everything else of
/// `current` stays: its resourceVersion (the write is an update with a
/// precondition), labels, ownerReferences, other annotations.
pub fn node_lease(
    mut lease: Lease,
    node: &str,
    duration_secs: i32,
    report: &Report,
    now: Timestamp,
) -> Lease {
    lease
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .extend(report.node_report().annotations());
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

/// A 404 is its own error: the Lease is not there (yet, or any more).
fn missing(error: LeaseError) -> LeaseError {
    match error {
        LeaseError::Api {
            name,
            source: kube::Error::Api(status),
        } if status.is_not_found() => LeaseError::Missing { name },
        other => other,
    }
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
        self.call(name, self.api.get(name)).await.map_err(missing)
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
            Err(e) => Err(missing(e)),
        }
    }

    /// Writes this node's record into the group Lease (module doc): read, decide,
    /// update with the resourceVersion read; on a conflict reads and decides once
    /// more. `written`: this record (this epoch) was stored before.
    pub async fn record_group(
        &self,
        group: &str,
        record: &Record,
        written: bool,
    ) -> Result<Recorded, LeaseError> {
        let name = names::group_lease(&self.cluster, group);
        for attempt in 0..2 {
            let current = self.get(&name).await?;
            match record_group(&current, record, written, Timestamp::now()) {
                Verdict::Write(lease) => {
                    if self.swap(&name, &lease).await?.is_some() {
                        return Ok(Recorded::Written);
                    }
                    debug!(
                        group,
                        attempt, "group Lease changed under us; reading it again"
                    );
                }
                Verdict::Floor(epoch) => return Ok(Recorded::Floor(epoch)),
                Verdict::Superseded { holder, epoch } => {
                    return Ok(Recorded::Superseded { holder, epoch });
                }
            }
        }
        Err(LeaseError::Conflict { name })
    }

    /// The epoch the group Lease records (0: none).
    pub async fn read_epoch(&self, group: &str) -> Result<u64, LeaseError> {
        let name = names::group_lease(&self.cluster, group);
        Ok(recorded_epoch(&self.get(&name).await?))
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

    /// Writes the node Lease over `last` (the object last stored, if any; else it
    /// is read first); returns what the API server stored. It never creates the
    /// Lease: [`LeaseError::Missing`] until the operator has.
    pub async fn renew_node(
        &self,
        last: Option<Lease>,
        duration_secs: i32,
        report: &Report,
    ) -> Result<Lease, LeaseError> {
        let name = names::node_lease(&self.cluster, &self.node);
        let render =
            |current| node_lease(current, &self.node, duration_secs, report, Timestamp::now());
        let current = match last {
            Some(lease) => lease,
            None => self.get(&name).await?,
        };
        if let Some(stored) = self.swap(&name, &render(current)).await? {
            return Ok(stored);
        }
        // Our copy was stale (another writer, or a restart): read and write again.
        let current = self.get(&name).await?;
        self.swap(&name, &render(current))
            .await?
            .ok_or(LeaseError::Conflict { name })
    }
}
