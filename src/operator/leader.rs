//! Leader election on a coordination.k8s.io Lease: only the holder runs the
//! controllers, so two operator replicas never write at the same time.
//!
//! Owns the pure decision ([`decide`]: take, renew or wait, from the Lease and the
//! clock) and the IO loop around it, every write a compare-and-swap on the Lease's
//! resourceVersion. It must never keep running controllers once it cannot prove it
//! still holds the Lease: [`Elector::hold`] returns and the process exits.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tracing::{info, warn};

/// Name of the leader Lease in the operator's namespace.
pub const LEASE_NAME: &str = "failover-operator-leader";

/// Why leadership was lost or could not be tried.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be renewed before it expired.
    #[error("leadership lost: the leader Lease was not renewed in time")]
    Lost,
    /// Another replica took the Lease.
    #[error("leadership lost: {0} holds the leader Lease now")]
    TakenBy(String),
}

/// What to do about the leader Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it (a new transition).
    TakeOver,
    /// Someone else holds it until about then.
    Wait {
        /// The holder.
        holder: String,
    },
}

/// Decides from the Lease (if any), who we are and the time.
pub fn decide(lease: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::TakeOver;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let expired = spec
        .renew_time
        .as_ref()
        .is_none_or(|renewed| renewed.0.checked_add(duration).is_ok_and(|end| end < now));
    if expired {
        Decision::TakeOver
    } else {
        Decision::Wait {
            holder: holder.to_owned(),
        }
    }
}

/// The elector of one replica.
pub struct Elector {
    api: Api<Lease>,
    identity: String,
    lease_duration: Duration,
    api_timeout: Duration,
}

impl Elector {
    /// An elector holding `LEASE_NAME` through `api` (the operator's namespace).
    pub fn new(
        api: Api<Lease>,
        identity: String,
        lease_duration: Duration,
        api_timeout: Duration,
    ) -> Self {
        Self {
            api,
            identity,
            lease_duration,
            api_timeout,
        }
    }

    /// One attempt: `Ok(true)` when we hold the Lease afterwards.
    async fn attempt(&self) -> bool {
        let current =
            match tokio::time::timeout(self.api_timeout, self.api.get_opt(LEASE_NAME)).await {
                Ok(Ok(lease)) => lease,
                Ok(Err(error)) => {
                    warn!(%error, "cannot read the leader Lease");
                    return false;
                }
                Err(_) => {
                    warn!("reading the leader Lease timed out");
                    return false;
                }
            };
        let now = Timestamp::now();
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.identity,
            now,
        );
        let seconds = i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let mut spec = current
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(MicroTime(now));
        let write = match (&decision, current) {
            (Decision::Wait { holder }, _) => {
                tracing::debug!(%holder, "another replica leads");
                return false;
            }
            (Decision::Create, _) | (_, None) => {
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(0);
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.to_owned()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                tokio::time::timeout(
                    self.api_timeout,
                    self.api.create(&PostParams::default(), &lease),
                )
                .await
            }
            (Decision::TakeOver | Decision::Renew, Some(mut lease)) => {
                if decision == Decision::TakeOver {
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                // resourceVersion stays as read: the replace is a compare-and-swap.
                lease.spec = Some(spec);
                tokio::time::timeout(
                    self.api_timeout,
                    self.api.replace(LEASE_NAME, &PostParams::default(), &lease),
                )
                .await
            }
        };
        match write {
            Ok(Ok(_)) => true,
            Ok(Err(kube::Error::Api(status))) if status.code == 409 => false,
            Ok(Err(error)) => {
                warn!(%error, "cannot write the leader Lease");
                false
            }
            Err(_) => {
                warn!("writing the leader Lease timed out");
                false
            }
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        let retry = self.lease_duration / 5;
        loop {
            if self.attempt().await {
                info!(identity = %self.identity, "leader Lease acquired");
                return;
            }
            tokio::time::sleep(retry).await;
        }
    }

    /// Keeps renewing; returns only with the reason leadership was lost. The
    /// deadline leaves a margin of a third of the Lease so the controllers stop
    /// before another replica may take over.
    pub async fn hold(&self) -> LeaderError {
        let period = self.lease_duration / 3;
        let mut deadline = tokio::time::Instant::now() + self.lease_duration - period;
        loop {
            tokio::time::sleep(period).await;
            if self.attempt().await {
                deadline = tokio::time::Instant::now() + self.lease_duration - period;
            } else if tokio::time::Instant::now() >= deadline {
                let read =
                    tokio::time::timeout(self.api_timeout, self.api.get_opt(LEASE_NAME)).await;
                return match read {
                    Ok(Ok(Some(lease))) => LeaderError::TakenBy(
                        lease
                            .spec
                            .and_then(|s| s.holder_identity)
                            .unwrap_or_default(),
                    ),
                    _ => LeaderError::Lost,
                };
            }
        }
    }

    /// Gives the Lease up on shutdown so another replica takes over at once.
    pub async fn release(&self) {
        let Ok(Ok(Some(mut lease))) =
            tokio::time::timeout(self.api_timeout, self.api.get_opt(LEASE_NAME)).await
        else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        match tokio::time::timeout(
            self.api_timeout,
            self.api.replace(LEASE_NAME, &PostParams::default(), &lease),
        )
        .await
        {
            Ok(Ok(_)) => info!("leader Lease released"),
            _ => warn!("could not release the leader Lease; it expires by itself"),
        }
    }
}

#[cfg(test)]
mod tests;
