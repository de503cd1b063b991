//! The ClusterConfig: the effective configuration of one cluster as the agents load
//! it, and its hash.
//!
//! Owns member address resolution (spec address, else the Node's InternalIP), the
//! multi-document YAML of the ConfigMap and the config hash. It is pure: it must
//! never read Nodes itself (callers pass what they know) and never render a
//! configuration whose members lack an address.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::ObjectMeta;

use super::names;
use crate::agent::config::config_hash;
use crate::api::{FailoverCluster, Problem, ResourceGroup};

/// Why the ClusterConfig could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Serializing a document failed (a bug, not bad input: every field serializes).
    #[error("cannot serialize {object} to YAML")]
    Yaml {
        /// The object.
        object: String,
        /// The serializer's error.
        #[source]
        source: serde_yaml_ng::Error,
    },
}

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

/// The ConfigMap payload: the YAML and its hash (`agent::config::config_hash` of
/// exactly the documents in the YAML, so the agents compute the same value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfig {
    /// `config.yaml`: one FailoverCluster document, then the groups sorted by name.
    pub yaml: String,
    /// The config hash as 16 lowercase hex digits.
    pub hash: String,
    /// Group -> its `failover.dev/clear-failures` annotation, for the groups that
    /// have one. Not part of the hash: clearing failures changes no configuration.
    pub clear_failures: BTreeMap<String, String>,
}

/// Renders the ClusterConfig of a validated cluster whose addresses are resolved
/// (see [`resolve_addresses`]). Only name, namespace and spec go in the YAML, so
/// status updates never change the hash; the groups' clear-failures annotations go
/// beside it.
pub fn render_config(
    cluster: &FailoverCluster,
    groups: &[ResourceGroup],
) -> Result<RenderedConfig, ConfigError> {
    let namespace = cluster.namespace();
    let meta = |name: String| ObjectMeta {
        name: Some(name),
        namespace: namespace.clone(),
        ..ObjectMeta::default()
    };
    let mut doc_cluster = FailoverCluster::new(&cluster.name_any(), cluster.spec.clone());
    doc_cluster.metadata = meta(cluster.name_any());
    let mut sorted: BTreeMap<String, ResourceGroup> = BTreeMap::new();
    for g in groups {
        let mut doc = ResourceGroup::new(&g.name_any(), g.spec.clone());
        doc.metadata = meta(g.name_any());
        sorted.insert(g.name_any(), doc);
    }
    let yaml_err = |object: String| move |source| ConfigError::Yaml { object, source };
    let mut yaml = serde_yaml_ng::to_string(&doc_cluster)
        .map_err(yaml_err(format!("FailoverCluster/{}", cluster.name_any())))?;
    for (name, doc) in &sorted {
        yaml.push_str("---\n");
        yaml.push_str(
            &serde_yaml_ng::to_string(doc).map_err(yaml_err(format!("ResourceGroup/{name}")))?,
        );
    }
    let clear_failures = groups
        .iter()
        .filter_map(|g| {
            let value = g.annotations().get(names::CLEAR_FAILURES)?;
            Some((g.name_any(), value.clone()))
        })
        .collect();
    let groups: Vec<ResourceGroup> = sorted.into_values().collect();
    Ok(RenderedConfig {
        yaml,
        hash: format!("{:016x}", config_hash(&doc_cluster, &groups)),
        clear_failures,
    })
}

#[cfg(test)]
mod tests;
