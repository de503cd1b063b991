//! The checked-in `crds/` must equal what the code generates, and the generated
//! CRDs must carry the metadata, defaults and documentation the issue asks for.

use std::path::PathBuf;

mod common;

use common::{by_kind, items, root_schema, schema_at};
use failover::api::{crd_file_name, crds, crds_yaml};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};

const REGENERATE: &str = "cargo run -- crd --out-dir crds";

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds")
}

#[test]
fn crds_dir_matches_generated_output() {
    let generated = crds_yaml().unwrap();
    for (crd, yaml) in &generated {
        let path = crds_dir().join(crd_file_name(crd));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}\nregenerate with `{REGENERATE}`",
                path.display()
            )
        });
        if on_disk != *yaml {
            let line = on_disk
                .lines()
                .zip(yaml.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || on_disk.lines().count().min(yaml.lines().count()) + 1,
                    |i| i + 1,
                );
            panic!(
                "{} differs from the generated CRD (first difference at line {line});\nregenerate with `{REGENERATE}`",
                path.display()
            );
        }
    }
    let mut expected: Vec<String> = generated.iter().map(|(c, _)| crd_file_name(c)).collect();
    let mut present: Vec<String> = std::fs::read_dir(crds_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    present.sort();
    assert_eq!(
        present, expected,
        "crds/ holds files the code does not generate; regenerate with `{REGENERATE}`"
    );
}

#[test]
fn names_scope_and_subresources() {
    for (kind, plural, short) in [
        ("FailoverCluster", "failoverclusters", "fc"),
        ("ResourceGroup", "resourcegroups", "rg"),
    ] {
        let crd = by_kind(kind);
        assert_eq!(crd.spec.group, "failover.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.plural, plural);
        assert_eq!(crd.spec.names.short_names, Some(vec![short.to_owned()]));
        assert_eq!(crd.spec.names.categories, Some(vec!["failover".to_owned()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.subresources.as_ref().unwrap().status.is_some());
    }
}

#[test]
fn printer_columns() {
    for (kind, want) in [
        (
            "FailoverCluster",
            vec![
                "Members", "Online", "Quorum", "Synced", "Config", "Degraded", "Age",
            ],
        ),
        (
            "ResourceGroup",
            vec!["Cluster", "Owner", "Phase", "Epoch", "Age"],
        ),
    ] {
        let crd = by_kind(kind);
        let names: Vec<String> = crd.spec.versions[0]
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names, want, "{kind}");
    }
    // The condition reasons show with `kubectl get fc -o wide` only.
    let wide: Vec<(String, Option<i32>)> = by_kind("FailoverCluster").spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .filter(|c| c.priority.unwrap_or(0) > 0)
        .map(|c| (c.json_path.clone(), c.priority))
        .collect();
    assert_eq!(
        wide,
        [
            (
                ".status.conditions[?(@.type==\"ConfigSynchronized\")].reason".to_owned(),
                Some(1)
            ),
            (
                ".status.conditions[?(@.type==\"Degraded\")].reason".to_owned(),
                Some(1)
            ),
        ]
    );
}

#[test]
fn defaults_appear_in_the_schema() {
    let fc = by_kind("FailoverCluster");
    let rg = by_kind("ResourceGroup");
    let default = |crd: &CustomResourceDefinition, path: &[&str]| {
        schema_at(crd, path)
            .default
            .unwrap_or_else(|| panic!("no default at {path:?}"))
            .0
    };
    assert_eq!(default(&fc, &["spec", "members", "[]", "priority"]), 100);
    assert_eq!(default(&fc, &["spec", "heartbeat", "interval"]), "200ms");
    assert_eq!(default(&fc, &["spec", "heartbeat", "deadAfter"]), "1s");
    assert_eq!(default(&fc, &["spec", "quorum"]), "majority");
    assert_eq!(default(&rg, &["spec", "failback", "policy"]), "Never");
    // The parent objects default as a whole, so an omitted block is filled in too.
    assert_eq!(default(&fc, &["spec", "heartbeat"])["interval"], "200ms");
    assert_eq!(default(&rg, &["spec", "failback"])["policy"], "Never");
}

/// `kubectl explain` shows descriptions: every property must have one.
fn assert_documented(schema: &JSONSchemaProps, path: &str, missing: &mut Vec<String>) {
    if let Some(props) = &schema.properties {
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            if prop.description.as_deref().is_none_or(str::is_empty) {
                missing.push(here.clone());
            }
            assert_documented(prop, &here, missing);
        }
    }
    if let Some(items) = items(schema) {
        assert_documented(items, &format!("{path}[]"), missing);
    }
}

#[test]
fn every_field_is_documented() {
    for crd in crds() {
        let mut missing = Vec::new();
        let root = root_schema(&crd);
        assert!(root.description.is_some(), "{} root", crd.spec.names.kind);
        assert_documented(&root, "", &mut missing);
        assert!(
            missing.is_empty(),
            "{}: fields without description: {missing:?}",
            crd.spec.names.kind
        );
    }
}
