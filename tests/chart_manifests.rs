//! The Helm chart against the Kubernetes API types.
//!
//! `tests/chart/run.sh` renders the chart with real Helm (tests/chart/test_chart.py
//! writes one YAML file per document and scenario) and then runs this test with
//! `FAILOVER_CHART_RENDERED` pointing at them. Every document must deserialize into
//! its k8s-openapi type (or, for the prometheus-operator kinds k8s-openapi does not
//! have, into the structs below) *without losing a field*: k8s-openapi ignores
//! unknown fields, so each document is serialized back and compared with the
//! original, which is what `deny_unknown_fields` would check. A misspelt field such
//! as `readOnlyRootFileSystem` fails here even though Helm renders it happily.
//!
//! The chart's crds/ must also be byte-identical to the top-level crds/.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const SYNC: &str = "cp crds/*.yaml charts/failover-operator/crds/";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn chart_crds_equal_the_top_level_crds() {
    let top = yaml_files(&root().join("crds"));
    let chart = yaml_files(&root().join("charts/failover-operator/crds"));
    let names = |files: &[PathBuf]| -> Vec<String> {
        files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names(&chart),
        names(&top),
        "chart crds/ holds other files than crds/; sync with `{SYNC}`"
    );
    for (t, c) in top.iter().zip(&chart) {
        assert!(
            std::fs::read(t).unwrap() == std::fs::read(c).unwrap(),
            "{} differs from {}; sync with `{SYNC}`",
            c.display(),
            t.display()
        );
    }
}

// The prometheus-operator (monitoring.coreos.com/v1) fields the chart uses, with
// their upstream names; anything else is an error.

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Monitoring<S> {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: S,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NamespaceSelector {
    #[serde(skip_serializing_if = "Option::is_none")]
    any: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    match_names: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Endpoint {
    port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    endpoints: Vec<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<NamespaceSelector>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodMonitorSpec {
    selector: LabelSelector,
    pod_metrics_endpoints: Vec<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<NamespaceSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_target_labels: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// Drops nulls (an empty `annotations:` in YAML), which no type keeps.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Paths in `original` that `typed` lost or changed.
fn differences(original: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) => differences(value, other, &format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key}: unknown field")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} became {b}")),
    }
}

/// Deserializes into `T` and checks that nothing was dropped or changed.
fn check<T: DeserializeOwned + Serialize>(document: &Value) -> Result<(), String> {
    let original = without_nulls(document);
    let typed: T = serde_json::from_value(original.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    differences(&original, &back, "", &mut lost);
    if lost.is_empty() {
        Ok(())
    } else {
        Err(lost.join("; "))
    }
}

fn check_document(document: &Value) -> Result<&'static str, String> {
    let api_version = document["apiVersion"].as_str().unwrap_or_default();
    let kind = document["kind"].as_str().unwrap_or_default();
    let result = match (api_version, kind) {
        ("v1", "ServiceAccount") => check::<ServiceAccount>(document),
        ("v1", "Service") => check::<Service>(document),
        ("v1", "ConfigMap") => check::<ConfigMap>(document),
        ("apps/v1", "Deployment") => check::<Deployment>(document),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => check::<ClusterRole>(document),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            check::<ClusterRoleBinding>(document)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => check::<Role>(document),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => check::<RoleBinding>(document),
        ("policy/v1", "PodDisruptionBudget") => check::<PodDisruptionBudget>(document),
        ("networking.k8s.io/v1", "NetworkPolicy") => check::<NetworkPolicy>(document),
        ("monitoring.coreos.com/v1", "ServiceMonitor") => {
            check::<Monitoring<ServiceMonitorSpec>>(document)
        }
        ("monitoring.coreos.com/v1", "PodMonitor") => check::<Monitoring<PodMonitorSpec>>(document),
        ("monitoring.coreos.com/v1", "PrometheusRule") => {
            check::<Monitoring<PrometheusRuleSpec>>(document)
        }
        _ => Err(format!("unknown kind {api_version}/{kind}")),
    };
    result.map(|()| "ok")
}

/// The operator's arguments must parse with the `failover` command line. Until the
/// operator is merged, `failover operator` does not exist yet and this is skipped.
fn check_operator_args(deployment: &Deployment) -> Result<(), String> {
    use clap::Parser;
    let container = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .ok_or("no container")?;
    let args = container.args.clone().ok_or("no args")?;
    let argv = std::iter::once("failover".to_owned()).chain(args);
    match failover::cli::Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            eprintln!("operator args not checked: this build has no `failover operator` yet");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn rendered_chart_documents_are_valid_kubernetes_objects() {
    let Some(dir) = std::env::var_os("FAILOVER_CHART_RENDERED") else {
        eprintln!(
            "skipped: FAILOVER_CHART_RENDERED is not set; tests/chart/run.sh renders the chart with Helm and sets it"
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let scenarios: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(!scenarios.is_empty(), "no scenario in {}", dir.display());
    let mut failures = Vec::new();
    let mut checked = 0;
    for scenario in &scenarios {
        let files = yaml_files(scenario);
        assert!(!files.is_empty(), "no document in {}", scenario.display());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let document: Value = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
            checked += 1;
            if let Err(why) = check_document(&document) {
                failures.push(format!("{}: {why}", file.display()));
            }
            if document["kind"] == "Deployment" {
                let deployment: Deployment = serde_json::from_value(document).unwrap();
                if let Err(why) = check_operator_args(&deployment) {
                    failures.push(format!("{}: operator args: {why}", file.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "{checked} rendered documents in {} scenarios match their types",
        scenarios.len()
    );
}

#[test]
fn a_misspelt_field_is_caught() {
    // The check itself must be able to fail: a typo k8s-openapi silently drops.
    let document: Value = serde_yaml_ng::from_str(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selectr: {a: b}\n",
    )
    .unwrap();
    let err = check_document(&document).unwrap_err();
    assert!(err.contains(".spec.selectr: unknown field"), "{err}");
    let monitor: Value = serde_yaml_ng::from_str(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\nspec:\n  selector: {}\n  endpoints: [{port: metrics, intervall: 5s}]\n",
    )
    .unwrap();
    assert!(check_document(&monitor).is_err());
    let unknown: Value = serde_yaml_ng::from_str("apiVersion: v9\nkind: Thing\n").unwrap();
    assert!(check_document(&unknown).is_err());
}
