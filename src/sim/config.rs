//! The shape of a simulated run and the cluster it simulates: timing, faults per
//! run, network and clock imperfections, and the [`ClusterModel`] every engine gets.

use std::time::Duration;

use crate::engine::DRIFT_ALLOWANCE;
use crate::placement::{
    ClusterModel, FailbackPolicy, GroupModel, MemberModel, QuarantinePolicy, QuorumMode,
};

/// The shape of one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: usize,
    pub groups: usize,
    pub interval: Duration,
    pub dead_after: Duration,
    pub quorum: QuorumMode,
    /// Model the Kubernetes mode's group Lease, the record of what the majority
    /// decided: each holder writes it an API round trip after it took the group
    /// (raising its epoch above the record first when the record is higher and not
    /// its own), and every agent reads it back as a floor when it boots.
    pub record: bool,
    /// Number of fault episodes per run.
    pub faults: usize,
    /// Time to start and to stop a group's resources.
    pub start_time: Duration,
    pub stop_time: Duration,
    /// One-way network delay range (jitter inside it reorders datagrams).
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Largest clock rate error of a node (0.004 = 0.4%).
    pub max_drift: f64,
    /// Lifetime of a VIP address in the kernel (renewed while held).
    pub address_lifetime: Duration,
    /// Longest time a starved agent's event loop waits for the CPU between two runs,
    /// in `deadAfter`s (above 1, a starved owner sometimes loses its votes).
    pub max_starve_lag: f64,
    /// Flap quarantine of members (`None`: off, the default: with the product's
    /// default quarantine the survivors' placements still differ for hours after
    /// flaps, and a racing claim can move a group without a cause the stability
    /// check accepts, e.g. `seed 2708` at 3 nodes and default timing).
    pub quarantine: Option<QuarantinePolicy>,
    /// Print every engine output (except heartbeats) to stderr, for reproducing a seed.
    pub trace: bool,
}

impl SimConfig {
    /// The default timing of the product (200 ms / 1 s) on a LAN.
    pub fn new(nodes: usize) -> Self {
        SimConfig {
            nodes,
            groups: 3,
            interval: Duration::from_millis(200),
            dead_after: Duration::from_secs(1),
            quorum: if nodes == 2 {
                QuorumMode::Witness
            } else {
                QuorumMode::Majority
            },
            record: false,
            faults: 6,
            start_time: Duration::from_millis(2),
            stop_time: Duration::from_millis(1),
            min_delay: Duration::from_micros(50),
            max_delay: Duration::from_micros(1500),
            max_drift: DRIFT_ALLOWANCE * 0.4,
            address_lifetime: Duration::from_secs(1),
            max_starve_lag: 1.5,
            quarantine: None,
            trace: false,
        }
    }

    /// The liveness bound checked: `deadAfter + interval + start time`, plus the
    /// network's delays and the drift allowance this simulation introduces.
    pub fn liveness_bound(&self) -> Duration {
        self.dead_after.mul_f64(1.0 + 2.0 * self.max_drift)
            + self.interval
            + self.start_time
            + self.stop_time
            + 4 * self.max_delay
    }
}

/// The product's default flap quarantine (`spec.quarantine`: 3 failures within 1 h
/// quarantine a member for 2 h), for runs that enable it.
pub const DEFAULT_QUARANTINE: QuarantinePolicy = QuarantinePolicy {
    failures: 3,
    period: Duration::from_secs(3600),
    duration: Duration::from_secs(7200),
};

pub(super) fn group_name(i: usize) -> String {
    format!("g{i}")
}

pub(super) fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The cluster of a simulation: priorities fall with the index; group i prefers node
/// i (mod n) first, so groups spread and failback is exercised.
pub fn sim_model(config: &SimConfig) -> ClusterModel {
    ClusterModel {
        cluster: "sim/cluster".into(),
        members: (0..config.nodes)
            .map(|i| MemberModel {
                name: node_name(i),
                priority: 200u8.saturating_sub((i * 10) as u8),
                paused: false,
            })
            .collect(),
        quorum: config.quorum,
        interval: config.interval,
        dead_after: config.dead_after,
        quarantine: config.quarantine,
        groups: (0..config.groups)
            .map(|g| GroupModel {
                name: group_name(g),
                preferred_owners: vec![node_name(g % config.nodes)],
                failback: if g % 2 == 0 {
                    FailbackPolicy::Immediate {
                        stabilize_for: config.interval * 2,
                    }
                } else {
                    FailbackPolicy::Never
                },
                failover_limit: None,
                owner: None,
            })
            .collect(),
    }
}
