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
