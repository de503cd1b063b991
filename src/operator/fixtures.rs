//! Fixtures of the operator's tests: a FailoverCluster `c` in namespace `ns` with
//! members a and b, its ResourceGroups, the Nodes it runs on, the Leases its agents
//! report through and the settings the operator renders the agent with.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeAddress as K8sNodeAddress, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::ObjectMeta;
use serde_json::{Value, json};

use super::build::AgentSettings;
use super::config::{NodeAddress, resolve_addresses};
use crate::api::{
    FailoverCluster, FailoverClusterSpec, MemberSpec, QuorumMode, ResourceGroup, ResourceGroupSpec,
    ResourceSpec, VirtualIpSpec,
};
use crate::contract::names;

pub(super) const NS: &str = "ns";

fn member(node: &str) -> MemberSpec {
    MemberSpec {
        node: node.to_owned(),
        priority: 100,
        paused: false,
        address: None,
        additional_addresses: Vec::new(),
    }
}

/// A FailoverCluster `c` in `ns` with members a and b, quorum `none` (`majority` of
/// two is invalid: it never fails over).
pub(super) fn cluster() -> FailoverCluster {
    let spec: FailoverClusterSpec = serde_json::from_value(
        json!({"members": [{"node": "a"}, {"node": "b"}], "quorum": "none"}),
    )
    .unwrap();
    let mut c = FailoverCluster::new("c", spec);
    c.metadata.namespace = Some(NS.to_owned());
    c.metadata.uid = Some("uid-c".to_owned());
    c.metadata.generation = Some(1);
    c
}

pub(super) trait ClusterFixture: Sized {
    fn member(self, node: &str) -> Self;
    fn witness(self) -> Self;
    /// Witness quorum with `failover witness` at `address` instead of the Lease.
    fn witness_process(self, address: &str) -> Self;
    fn dead_after(self, text: &str) -> Self;
    fn hash(self, hash: &str) -> Self;
}

impl ClusterFixture for FailoverCluster {
    fn member(mut self, node: &str) -> Self {
        self.spec.members.push(member(node));
        self
    }
    fn witness(mut self) -> Self {
        self.spec.quorum = QuorumMode::Witness;
        self
    }
    fn witness_process(mut self, address: &str) -> Self {
        self.spec.quorum = QuorumMode::Witness;
        self.spec.witness = Some(crate::api::WitnessSpec {
            address: address.to_owned(),
            port: None,
        });
        self
    }
    fn dead_after(mut self, text: &str) -> Self {
        self.spec.heartbeat.dead_after = text.parse().unwrap();
        self
    }
    fn hash(mut self, hash: &str) -> Self {
        self.status.get_or_insert_with(Default::default).config_hash = Some(hash.to_owned());
        self
    }
}

/// A ResourceGroup of cluster `c` with one VIP.
pub(super) fn group(name: &str, vip: &str) -> ResourceGroup {
    let mut g = ResourceGroup::new(
        name,
        ResourceGroupSpec {
            cluster: "c".to_owned(),
            ..serde_json::from_value(json!({"cluster": "c", "resources": []})).unwrap()
        },
    );
    g.spec.resources.push(ResourceSpec {
        name: "vip".to_owned(),
        virtual_ip: Some(VirtualIpSpec {
            address: vip.to_owned(),
            interface: None,
        }),
        workload: None,
        process: None,
        health_check: None,
        depends_on: Vec::new(),
    });
    g.metadata.namespace = Some(NS.to_owned());
    g.metadata.uid = Some(format!("uid-{name}"));
    g.metadata.generation = Some(1);
    g
}

pub(super) fn node(name: &str, ip: Option<&str>) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        status: Some(NodeStatus {
            addresses: Some(
                ip.map(|ip| K8sNodeAddress {
                    type_: "InternalIP".to_owned(),
                    address: ip.to_owned(),
                })
                .into_iter()
                .collect(),
            ),
            ..NodeStatus::default()
        }),
        ..Node::default()
    }
}

pub(super) fn ip_of(name: &str) -> NodeAddress {
    match name {
        "a" => NodeAddress::Ip("10.0.0.1".into()),
        "b" => NodeAddress::Ip("10.0.0.2".into()),
        "c" => NodeAddress::Ip("10.0.0.3".into()),
        "bare" => NodeAddress::NoInternalIp,
        _ => NodeAddress::Unknown,
    }
}

pub(super) fn lease(
    name: &str,
    holder: Option<&str>,
    renewed: Timestamp,
    annotations: &[(&str, &str)],
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NS.to_owned()),
            labels: Some(BTreeMap::from([(
                names::CLUSTER_LABEL.to_owned(),
                "c".to_owned(),
            )])),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: Some(MicroTime(renewed)),
            ..LeaseSpec::default()
        }),
    }
}

/// A node Lease of `node`, renewed `age` ago, reporting `hash` and a view.
pub(super) fn node_lease(
    node: &str,
    age: Duration,
    hash: &str,
    quorate: bool,
    held: &[&str],
) -> Lease {
    let view = json!({
        "quorate": quorate,
        "alive": ["a", "b"],
        "held": held.iter().map(|g| (g.to_string(), 1)).collect::<BTreeMap<_, _>>(),
    })
    .to_string();
    let explain = json!({"web": format!("{node} explains")}).to_string();
    lease(
        &names::node_lease("c", node),
        Some(node),
        Timestamp::now() - age,
        &[
            (names::CONFIG_HASH, hash),
            (names::VIEW, &view),
            (names::EXPLAIN, &explain),
        ],
    )
}

/// `lease` (a node Lease) with `view` as its agent's view.
pub(super) fn with_view(mut lease: Lease, view: serde_json::Value) -> Lease {
    lease
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(names::VIEW.to_owned(), view.to_string());
    lease
}

pub(super) fn resolved(c: &FailoverCluster) -> FailoverCluster {
    resolve_addresses(c, ip_of).unwrap()
}

pub(super) fn settings() -> AgentSettings {
    AgentSettings {
        image: "registry.example/failover:1.2.3".into(),
        pull_policy: "Always".into(),
        resources: None,
        realtime_priority: 50,
    }
}

/// A node Lease of `node`, renewed `age` ago, reporting `owned` (JSON of the
/// `failover.dev/owned` annotation).
pub(super) fn reporting_lease(node: &str, age: Duration, owned: Value) -> Lease {
    let mut lease = node_lease(node, age, "h", true, &[]);
    lease
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(names::OWNED.to_owned(), owned.to_string());
    lease
}
