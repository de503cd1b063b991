//! The ClusterConfig ConfigMap and the heartbeat Secret as the agent's Kubernetes
//! mode reads them: the configuration (`contract::render` wrote it), the groups'
//! clear-failures values, and the heartbeat keys.
//!
//! Owns the reading of those data keys. It must never fetch the objects (the agent
//! watches them) and never reject a configuration for what only concerns the
//! clear-failures values (malformed ones are logged and ignored).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use tracing::warn;

use super::model::{AgentConfig, ConfigError, hash_text};
use super::names;
use crate::membership::{AuthError, Keyring};

/// Why one ConfigMap or Secret version cannot be used (the last good one stays).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{name}: no data key {key}")]
    Missing { name: String, key: &'static str },
    #[error("ConfigMap {name}")]
    Config {
        name: String,
        #[source]
        source: ConfigError,
    },
    #[error("Secret {name}: unusable heartbeat key")]
    Key {
        name: String,
        #[source]
        source: AuthError,
    },
}

/// The configuration in a ClusterConfig ConfigMap and the clear-failures values.
/// A hash that differs from the one the agent computes is logged, not fatal: the
/// computed one is what the agent runs and reports.
pub fn parse_config_map(
    cm: &ConfigMap,
) -> Result<(AgentConfig, BTreeMap<String, String>), SourceError> {
    let name = cm.name_any();
    let data = cm.data.as_ref();
    let yaml = data
        .and_then(|d| d.get(names::CONFIG_KEY))
        .ok_or_else(|| SourceError::Missing {
            name: name.clone(),
            key: names::CONFIG_KEY,
        })?;
    let config = AgentConfig::from_cluster_yaml(yaml).map_err(|source| SourceError::Config {
        name: name.clone(),
        source,
    })?;
    let computed = hash_text(config.hash);
    if let Some(stated) = data.and_then(|d| d.get(names::HASH_KEY))
        && *stated != computed
    {
        warn!(
            configmap = name,
            stated,
            computed,
            "config hash differs from the operator's (version skew?); running the computed one"
        );
    }
    let clear = match data.and_then(|d| d.get(names::CLEAR_FAILURES_KEY)) {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str(text).unwrap_or_else(|error| {
            warn!(configmap = name, %error, "ignoring malformed {}", names::CLEAR_FAILURES_KEY);
            BTreeMap::new()
        }),
    };
    Ok((config, clear))
}

/// The heartbeat keys in the Secret: `key`, and `previousKey` during a rotation
/// (also returned raw, to notice changes).
#[allow(clippy::type_complexity)]
pub fn parse_secret(secret: &Secret) -> Result<(Keyring, (Vec<u8>, Option<Vec<u8>>)), SourceError> {
    let name = secret.name_any();
    let data = secret.data.as_ref();
    let key = data
        .and_then(|d| d.get(names::KEY))
        .ok_or_else(|| SourceError::Missing {
            name: name.clone(),
            key: names::KEY,
        })?;
    let previous = data
        .and_then(|d| d.get(names::PREVIOUS_KEY))
        .map(|p| p.0.clone());
    let keys = Keyring::new(key.0.clone(), previous.clone())
        .map_err(|source| SourceError::Key { name, source })?;
    Ok((keys, (key.0.clone(), previous)))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::api::load_documents;
    use crate::contract::render::render_config;

    const DOCUMENTS: &str = "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: lab, namespace: ns}
spec:
  members:
    - {node: n1, address: 10.78.0.1}
    - {node: n2, address: 10.78.0.2}
    - {node: n3, address: 10.78.0.3}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata:
  name: web
  namespace: ns
  annotations: {failover.dev/clear-failures: '2026-12-01'}
spec:
  cluster: lab
  resources:
    - {name: vip, virtualIP: {address: 10.78.0.100/24}}
";

    /// What the operator renders is what the agent reads: the same configuration,
    /// the same hash, the same clear-failures values.
    #[test]
    fn the_agent_reads_what_the_operator_renders() {
        let (cluster, groups) = load_documents(DOCUMENTS).unwrap();
        let rendered = render_config(&cluster, &groups).unwrap();
        let clear = serde_json::to_string(&rendered.clear_failures).unwrap();
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(names::config_map("lab")),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                (names::CONFIG_KEY.to_owned(), rendered.yaml.clone()),
                (names::HASH_KEY.to_owned(), rendered.hash.clone()),
                (names::CLEAR_FAILURES_KEY.to_owned(), clear),
            ])),
            ..ConfigMap::default()
        };
        let (config, read) = parse_config_map(&cm).unwrap();
        assert_eq!(hash_text(config.hash), rendered.hash);
        assert_eq!(config.model.cluster, "ns/lab");
        assert_eq!(read, rendered.clear_failures);
        assert_eq!(read["web"], "2026-12-01");
    }
}
