//! Rendering of the CustomResourceDefinitions as YAML.
//!
//! Owns the one place the CRD YAML is produced, so `failover crd`, the files in
//! `crds/` and the test that keeps them in sync cannot disagree. It must never
//! edit the generated schema by hand; changes belong on the Rust types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::cluster::FailoverCluster;
use super::group::ResourceGroup;

/// Why the CRDs could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Serializing a CRD to YAML failed.
    #[error("cannot render CRD {name} as YAML")]
    Yaml {
        /// The CRD's name.
        name: String,
        /// The serializer's error.
        #[source]
        source: serde_yaml_ng::Error,
    },
}

/// Both CRDs, FailoverCluster first.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![FailoverCluster::crd(), ResourceGroup::crd()]
}

/// The file name a CRD is stored under in `crds/`: `<plural>.<group>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// Each CRD with its YAML text, in the order of [`crds`].
pub fn crds_yaml() -> Result<Vec<(CustomResourceDefinition, String)>, CrdError> {
    crds()
        .into_iter()
        .map(|crd| {
            let yaml = serde_yaml_ng::to_string(&crd).map_err(|source| CrdError::Yaml {
                name: crd.metadata.name.clone().unwrap_or_default(),
                source,
            })?;
            Ok((crd, yaml))
        })
        .collect()
}
