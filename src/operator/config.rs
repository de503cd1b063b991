//! Member addresses for the ClusterConfig: the spec's `address`, else the Node's
//! InternalIP, before `contract::render` writes the configuration the agents load.
//!
//! Owns that resolution. It is pure: it must never read Nodes itself (callers pass
//! what they know) and never hand on a cluster whose members lack an address.

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

use crate::api::{FailoverCluster, Problem};

/// What the operator knows about a member's Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAddress {
    /// No Node of that name exists.
    Unknown,
    /// The Node exists but reports no InternalIP.
    NoInternalIp,
    /// The Node's first InternalIP.
    Ip(String),
}

/// The first InternalIP of a Node, as [`NodeAddress`].
pub fn node_address(node: Option<&Node>) -> NodeAddress {
    let Some(node) = node else {
        return NodeAddress::Unknown;
    };
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .map_or(NodeAddress::NoInternalIp, |a| {
            NodeAddress::Ip(a.address.clone())
        })
}

/// The cluster with every member's `address` set: the spec's when given, else its
/// Node's InternalIP. A member without either is a problem naming
/// `spec.members[i]`; the cluster is returned only when there is none.
pub fn resolve_addresses(
    cluster: &FailoverCluster,
    lookup: impl Fn(&str) -> NodeAddress,
) -> Result<FailoverCluster, Vec<Problem>> {
    let object = format!(
        "FailoverCluster/{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    );
    let mut resolved = cluster.clone();
    let mut problems = Vec::new();
    for (i, member) in resolved.spec.members.iter_mut().enumerate() {
        if member.address.is_some() {
            continue;
        }
        let message = match lookup(&member.node) {
            NodeAddress::Ip(ip) => {
                member.address = Some(ip);
                continue;
            }
            NodeAddress::Unknown => format!(
                "node {:?} does not exist; name an existing node or set spec.members[{i}].address",
                member.node
            ),
            NodeAddress::NoInternalIp => format!(
                "node {:?} has no InternalIP; set spec.members[{i}].address",
                member.node
            ),
        };
        problems.push(Problem {
            object: object.clone(),
            path: format!("spec.members[{i}].node"),
            message,
        });
    }
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;
