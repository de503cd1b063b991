//! Helpers shared by the integration tests: finding places in the generated CRD schema.

use failover::api::crds;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};

/// The generated CRD of a kind.
pub fn by_kind(kind: &str) -> CustomResourceDefinition {
    crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"))
}

/// The `openAPIV3Schema` of a CRD's only version.
pub fn root_schema(crd: &CustomResourceDefinition) -> JSONSchemaProps {
    crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.clone())
        .unwrap()
}

/// The items schema of an array schema, if it has one.
pub fn items(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &schema.items {
        Some(JSONSchemaPropsOrArray::Schema(s)) => Some(s),
        _ => None,
    }
}

/// Follows property names (and `[]` for array items) from the root schema.
pub fn schema_at(crd: &CustomResourceDefinition, path: &[&str]) -> JSONSchemaProps {
    let mut schema = root_schema(crd);
    for step in path {
        schema = if *step == "[]" {
            items(&schema)
                .cloned()
                .unwrap_or_else(|| panic!("no items schema at {step} in {path:?}"))
        } else {
            schema
                .properties
                .as_ref()
                .and_then(|p| p.get(*step))
                .cloned()
                .unwrap_or_else(|| panic!("no property {step} in {path:?}"))
        };
    }
    schema
}
