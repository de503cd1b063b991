//! The ClusterConfig as the operator writes it into its ConfigMap: one
//! FailoverCluster document, then the ResourceGroups sorted by name, each with only
//! name, namespace and spec; beside it the config hash and the groups'
//! clear-failures values. `contract::source` reads it back on the agent's side.
//!
//! Owns the document form (the hash itself is `model::config_hash`). It is pure:
//! it must never look anything up (member addresses are resolved before) and never
//! put status or other metadata in the documents, so only a spec change changes
//! the hash.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::ObjectMeta;

use super::model::{config_hash, hash_text};
use super::names;
use crate::api::{FailoverCluster, ResourceGroup};

/// Why the ClusterConfig could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
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

/// The ConfigMap payload: the YAML and its hash ([`config_hash`] of exactly the
/// documents in the YAML, so the agents compute the same value).
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

/// Renders the ClusterConfig of a validated cluster whose members all have an
/// address (the operator resolves them from the Nodes first). Only name, namespace
/// and spec go in the YAML, so status updates never change the hash; the groups'
/// clear-failures annotations go beside it.
pub fn render_config(
    cluster: &FailoverCluster,
    groups: &[ResourceGroup],
) -> Result<RenderedConfig, RenderError> {
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
    let yaml_err = |object: String| move |source| RenderError::Yaml { object, source };
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
        hash: hash_text(config_hash(&doc_cluster, &groups)),
        clear_failures,
    })
}
