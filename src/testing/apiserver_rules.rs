//! The validation rules the Kubernetes API server applies to the objects the
//! operator and the agent write, as a test-only checker of the JSON bodies they send.
//!
//! Owns nothing the operator or the agent runs: it exists so that the rendering and
//! mocked-API tests see what a real API server would refuse (a mock accepts
//! anything). It knows Kubernetes objects and the generated CRDs, never the
//! operator's or the agent's code. Each rule names its source in
//! kubernetes/kubernetes (`pkg/apis/.../validation`) or
//! `k8s.io/apimachinery/pkg/util/validation`; a rule we render no object for is not
//! here. It must never be used outside tests, and never relax a rule to make a test
//! pass: fix what is rendered instead.

use serde_json::Value;

/// apimachinery `validation.DNS1123LabelMaxLength`.
const DNS1123_LABEL_MAX: usize = 63;
/// apimachinery `validation.DNS1123SubdomainMaxLength`.
const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// apimachinery `validation.LabelValueMaxLength` (also the name part of a qualified name).
const LABEL_VALUE_MAX: usize = 63;
/// apimachinery `api/validation.TotalAnnotationSizeLimitB`: 256 KiB over keys and values.
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
/// `pkg/apis/core.MaxSecretSize`: data of a Secret, and of a ConfigMap
/// (`ValidateConfigMap` uses the same limit), 1 MiB.
const DATA_MAX_BYTES: usize = 1024 * 1024;
/// `pkg/apis/core/validation/events.go`: `ReasonLengthLimit`, `ActionLengthLimit`,
/// `ReportingInstanceLengthLimit`.
const EVENT_FIELD_MAX: usize = 128;
/// `pkg/apis/core/validation/events.go` `NoteLengthLimit` (bytes: `len(event.Note)`).
const EVENT_NOTE_MAX_BYTES: usize = 1024;

fn alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// apimachinery `IsDNS1123Label`: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub fn dns1123_label(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= DNS1123_LABEL_MAX
        && value.chars().all(|c| alnum_lower(c) || c == '-')
        && value.starts_with(alnum_lower)
        && value.ends_with(alnum_lower);
    ok.then_some(())
        .ok_or_else(|| format!("{value:?} is not a DNS-1123 label (lowercase alphanumerics and '-', at most {DNS1123_LABEL_MAX})"))
}

/// apimachinery `IsDNS1123Subdomain`: dot-separated DNS-1123 labels, at most 253.
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= DNS1123_SUBDOMAIN_MAX
        && value.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| alnum_lower(c) || c == '-')
                && part.starts_with(alnum_lower)
                && part.ends_with(alnum_lower)
        });
    ok.then_some(()).ok_or_else(|| {
        format!(
            "{value:?} ({} characters) is not a DNS-1123 subdomain (lowercase alphanumerics, '-' and '.', at most {DNS1123_SUBDOMAIN_MAX})",
            value.len()
        )
    })
}

/// apimachinery `IsQualifiedName`'s name part and `IsValidLabelValue`'s syntax:
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn qualified_name_part(value: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    value
        .chars()
        .all(|c| edge(c) || matches!(c, '-' | '_' | '.'))
        && value.starts_with(edge)
        && value.ends_with(edge)
}

/// apimachinery `IsQualifiedName` (label and annotation keys): an optional
/// DNS-1123 subdomain prefix and '/', then a name of at most 63 characters.
pub fn qualified_name(value: &str) -> Result<(), String> {
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if let Some(prefix) = prefix {
        dns1123_subdomain(prefix).map_err(|e| format!("prefix of {value:?}: {e}"))?;
    }
    let ok = !name.is_empty()
        && name.len() <= LABEL_VALUE_MAX
        && !name.contains('/')
        && qualified_name_part(name);
    ok.then_some(())
        .ok_or_else(|| format!("{value:?} is not a qualified name"))
}

/// apimachinery `IsValidLabelValue`: empty, or at most 63 characters of the
/// qualified-name syntax.
pub fn label_value(value: &str) -> Result<(), String> {
    let ok = value.is_empty() || (value.len() <= LABEL_VALUE_MAX && qualified_name_part(value));
    ok.then_some(()).ok_or_else(|| {
        format!(
            "label value {value:?} ({} characters) is invalid (at most {LABEL_VALUE_MAX})",
            value.len()
        )
    })
}

/// apimachinery `IsConfigMapKey` (ConfigMap and Secret data keys):
/// `[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`, not starting with `..`.
pub fn config_map_key(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= DNS1123_SUBDOMAIN_MAX
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && value != "."
        && !value.starts_with("..");
    ok.then_some(())
        .ok_or_else(|| format!("{value:?} is not a valid ConfigMap/Secret key"))
}

/// apimachinery `IsValidPortName` (IANA_SVC_NAME): at most 15 lowercase
/// alphanumerics and '-', at least one letter, no '-' at either end, no "--".
pub fn port_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 15
        && value.chars().all(|c| alnum_lower(c) || c == '-')
        && value.chars().any(|c| c.is_ascii_lowercase())
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    ok.then_some(())
        .ok_or_else(|| format!("{value:?} is not an IANA_SVC_NAME port name"))
}

/// `pkg/apis/rbac/validation` `ValidateRBACName` = apimachinery
/// `path.IsValidPathSegmentName`: not `.` or `..`, no '/' or '%'.
fn path_segment_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty() && value != "." && value != ".." && !value.contains(['/', '%']);
    ok.then_some(())
        .ok_or_else(|| format!("{value:?} is not a valid path segment name"))
}

/// Collects violations with the field path they were found at.
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn check(&mut self, path: &str, result: Result<(), String>) {
        if let Err(e) = result {
            self.0.push(format!("{path}: {e}"));
        }
    }
    fn fail(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(format!("{path}: {}", message.into()));
    }
}

fn str_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn object_entries<'a>(value: &'a Value, key: &str) -> Vec<(&'a String, &'a Value)> {
    value
        .get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

/// apimachinery `api/validation.ValidateObjectMeta` with the kind's name rule:
/// name required; namespace a DNS-1123 label; labels (`ValidateLabels`), annotations
/// (`ValidateAnnotations`, 256 KiB in total) and owner references
/// (`ValidateOwnerReferences`: apiVersion, kind, name, uid required, at most one
/// controller).
fn object_meta(r: &mut Report, object: &Value, name_rule: fn(&str) -> Result<(), String>) {
    let meta = &object["metadata"];
    match str_of(meta, "name") {
        Some(name) => r.check("metadata.name", name_rule(name)),
        None => r.fail("metadata.name", "Required value"),
    }
    if let Some(ns) = str_of(meta, "namespace") {
        r.check("metadata.namespace", dns1123_label(ns));
    }
    for (key, value) in object_entries(meta, "labels") {
        r.check(&format!("metadata.labels[{key}]"), qualified_name(key));
        match value.as_str() {
            Some(v) => r.check(&format!("metadata.labels[{key}]"), label_value(v)),
            None => r.fail(&format!("metadata.labels[{key}]"), "not a string"),
        }
    }
    let mut annotation_bytes = 0;
    for (key, value) in object_entries(meta, "annotations") {
        r.check(&format!("metadata.annotations[{key}]"), qualified_name(key));
        annotation_bytes += key.len() + value.as_str().map_or(0, str::len);
    }
    if annotation_bytes > ANNOTATIONS_MAX_BYTES {
        r.fail(
            "metadata.annotations",
            format!("{annotation_bytes} bytes; at most {ANNOTATIONS_MAX_BYTES}"),
        );
    }
    let owners = array(meta, "ownerReferences");
    for (i, owner) in owners.iter().enumerate() {
        for field in ["apiVersion", "kind", "name", "uid"] {
            if str_of(owner, field).is_none_or(str::is_empty) {
                r.fail(
                    &format!("metadata.ownerReferences[{i}].{field}"),
                    "Required value",
                );
            }
        }
    }
    let controllers = owners
        .iter()
        .filter(|o| o["controller"] == Value::Bool(true))
        .count();
    if controllers > 1 {
        r.fail(
            "metadata.ownerReferences",
            "only one reference can have Controller set to true",
        );
    }
}

/// `ValidateConfigMap` / `ValidateSecret` (pkg/apis/core/validation): every key is a
/// ConfigMap key, the data together at most 1 MiB.
fn data_keys(r: &mut Report, object: &Value, fields: &[&str]) {
    let mut total = 0;
    for field in fields {
        for (key, value) in object_entries(object, field) {
            r.check(&format!("{field}[{key}]"), config_map_key(key));
            total += value.as_str().map_or(0, str::len);
        }
    }
    if total > DATA_MAX_BYTES {
        r.fail(
            "data",
            format!("{total} bytes; at most {DATA_MAX_BYTES} (MaxSecretSize)"),
        );
    }
}

/// `ValidateNodeSelector` and `ValidateNodeSelectorRequirement` /
/// `validateNodeFieldSelectorRequirement` (pkg/apis/core/validation): at least one
/// term; label requirements need values for In/NotIn, none for Exists/DoesNotExist,
/// exactly one for Gt/Lt; a field requirement may only be on `metadata.name`, only
/// with In/NotIn, and with exactly one value.
fn node_selector(r: &mut Report, path: &str, selector: &Value) {
    let terms = array(selector, "nodeSelectorTerms");
    if terms.is_empty() {
        r.fail(
            &format!("{path}.nodeSelectorTerms"),
            "must have at least one node selector term",
        );
    }
    for (i, term) in terms.iter().enumerate() {
        for (j, req) in array(term, "matchExpressions").iter().enumerate() {
            let at = format!("{path}.nodeSelectorTerms[{i}].matchExpressions[{j}]");
            let values = array(req, "values").len();
            let ok = match str_of(req, "operator").unwrap_or_default() {
                "In" | "NotIn" => values > 0,
                "Exists" | "DoesNotExist" => values == 0,
                "Gt" | "Lt" => values == 1,
                _ => false,
            };
            if !ok {
                r.fail(&at, "operator and values do not agree");
            }
            r.check(
                &format!("{at}.key"),
                qualified_name(str_of(req, "key").unwrap_or_default()),
            );
        }
        for (j, req) in array(term, "matchFields").iter().enumerate() {
            let at = format!("{path}.nodeSelectorTerms[{i}].matchFields[{j}]");
            if str_of(req, "key") != Some("metadata.name") {
                r.fail(
                    &format!("{at}.key"),
                    "not a supported node field selector key",
                );
            }
            match str_of(req, "operator") {
                Some("In" | "NotIn") => {
                    if array(req, "values").len() != 1 {
                        r.fail(
                            &format!("{at}.values"),
                            "must be only one value when operator is 'In' or 'NotIn' for node field selector",
                        );
                    }
                }
                _ => r.fail(&format!("{at}.operator"), "not a valid selector operator"),
            }
        }
    }
}

/// `metav1validation.ValidateLabelSelector` and the label-selector match the
/// DaemonSet rule below needs: matchLabels only (the operator renders no
/// expressions; an expression is reported so this checker is extended first).
fn selector_matches(r: &mut Report, selector: &Value, labels: &Value) -> bool {
    if !array(selector, "matchExpressions").is_empty() {
        r.fail(
            "spec.selector.matchExpressions",
            "not understood by this checker",
        );
        return false;
    }
    let wanted = object_entries(selector, "matchLabels");
    if wanted.is_empty() {
        r.fail("spec.selector", "empty selector is invalid for daemonset");
        return false;
    }
    for (key, value) in &wanted {
        r.check(
            &format!("spec.selector.matchLabels[{key}]"),
            qualified_name(key),
        );
        r.check(
            &format!("spec.selector.matchLabels[{key}]"),
            label_value(value.as_str().unwrap_or("\u{0}")),
        );
    }
    wanted
        .iter()
        .all(|(k, v)| labels.get(k.as_str()) == Some(v))
}

/// The pod template rules of `ValidatePodTemplateSpec` / `ValidatePodSpec`
/// (pkg/apis/core/validation) for the fields the operator sets.
fn pod_spec(r: &mut Report, spec: &Value) {
    let volumes: Vec<&str> = array(spec, "volumes")
        .iter()
        .filter_map(|v| str_of(v, "name"))
        .collect();
    for (i, name) in volumes.iter().enumerate() {
        // validateVolumes: DNS-1123 label, unique.
        r.check(&format!("spec.volumes[{i}].name"), dns1123_label(name));
        if volumes[..i].contains(name) {
            r.fail(&format!("spec.volumes[{i}].name"), "Duplicate value");
        }
    }
    let containers = array(spec, "containers");
    if containers.is_empty() {
        r.fail("spec.containers", "Required value");
    }
    let host_network = spec["hostNetwork"] == Value::Bool(true);
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let at = format!("spec.containers[{i}]");
        // validateContainers: name a DNS-1123 label, unique; image required.
        let name = str_of(c, "name").unwrap_or_default();
        r.check(&format!("{at}.name"), dns1123_label(name));
        if names.contains(&name) {
            r.fail(&format!("{at}.name"), "Duplicate value");
        }
        names.push(name);
        if str_of(c, "image").is_none_or(str::is_empty) {
            r.fail(&format!("{at}.image"), "Required value");
        }
        // validateContainerPorts: names IANA_SVC_NAME and unique in the container,
        // port 1-65535, protocol TCP/UDP/SCTP; with hostNetwork a hostPort equals the
        // containerPort (validateHostNetwork).
        let mut port_names: Vec<&str> = Vec::new();
        for (j, p) in array(c, "ports").iter().enumerate() {
            let pat = format!("{at}.ports[{j}]");
            if let Some(name) = str_of(p, "name") {
                r.check(&format!("{pat}.name"), port_name(name));
                if port_names.contains(&name) {
                    r.fail(&format!("{pat}.name"), "Duplicate value");
                }
                port_names.push(name);
            }
            let port = p["containerPort"].as_i64().unwrap_or(0);
            if !(1..=65535).contains(&port) {
                r.fail(
                    &format!("{pat}.containerPort"),
                    "must be between 1 and 65535",
                );
            }
            if !matches!(
                str_of(p, "protocol").unwrap_or("TCP"),
                "TCP" | "UDP" | "SCTP"
            ) {
                r.fail(&format!("{pat}.protocol"), "Unsupported value");
            }
            if host_network && p.get("hostPort").is_some_and(|h| h.as_i64() != Some(port)) {
                r.fail(
                    &format!("{pat}.hostPort"),
                    "must match containerPort when hostNetwork is true",
                );
            }
        }
        // validateProbe / validateHTTPGetAction: a named port must be a valid port
        // name (the kubelet resolves it against the container's ports).
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(port) = c[probe]["httpGet"]["port"].as_str() {
                r.check(&format!("{at}.{probe}.httpGet.port"), port_name(port));
                if !port_names.contains(&port) {
                    r.fail(
                        &format!("{at}.{probe}.httpGet.port"),
                        "names no container port",
                    );
                }
            }
        }
        // ValidateEnv: names are C identifiers-ish (IsEnvVarName).
        for (j, e) in array(c, "env").iter().enumerate() {
            let name = str_of(e, "name").unwrap_or_default();
            let ok = !name.is_empty()
                && !name.starts_with(|ch: char| ch.is_ascii_digit())
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.' | '_'));
            if !ok {
                r.fail(
                    &format!("{at}.env[{j}].name"),
                    "not a valid environment variable name",
                );
            }
        }
        // validateVolumeMounts: every mount names a volume of the pod.
        for (j, m) in array(c, "volumeMounts").iter().enumerate() {
            if !str_of(m, "name").is_some_and(|n| volumes.contains(&n)) {
                r.fail(&format!("{at}.volumeMounts[{j}].name"), "Not found");
            }
        }
    }
    if let Some(sa) = str_of(spec, "serviceAccountName") {
        r.check("spec.serviceAccountName", dns1123_subdomain(sa));
    }
    if spec["terminationGracePeriodSeconds"]
        .as_i64()
        .is_some_and(|s| s < 0)
    {
        r.fail("spec.terminationGracePeriodSeconds", "must be non-negative");
    }
    if let Some(policy) = str_of(spec, "dnsPolicy")
        && !["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"].contains(&policy)
    {
        r.fail("spec.dnsPolicy", "Unsupported value");
    }
    // validateTolerations: an empty key needs operator Exists; Exists takes no value.
    for (i, t) in array(spec, "tolerations").iter().enumerate() {
        let key = str_of(t, "key").unwrap_or_default();
        let op = str_of(t, "operator").unwrap_or("Equal");
        if key.is_empty() && op != "Exists" {
            r.fail(
                &format!("spec.tolerations[{i}].operator"),
                "must be Exists when key is empty",
            );
        }
        if op == "Exists" && str_of(t, "value").is_some_and(|v| !v.is_empty()) {
            r.fail(
                &format!("spec.tolerations[{i}].value"),
                "must be empty when operator is Exists",
            );
        }
    }
    if let Some(required) =
        spec.pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
    {
        node_selector(
            r,
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
            required,
        );
    }
    // ValidateDaemonSetSpec: a DaemonSet's pods restart Always (the default).
    if str_of(spec, "restartPolicy").is_some_and(|p| p != "Always") {
        r.fail(
            "spec.restartPolicy",
            "a DaemonSet's pods must restart Always",
        );
    }
}

/// `ValidateDaemonSet` / `ValidateDaemonSetSpec` (pkg/apis/apps/validation): name a
/// DNS subdomain, a non-empty selector that matches the template's labels, a valid
/// pod template, a RollingUpdate strategy whose maxUnavailable is not zero when
/// maxSurge is zero.
fn daemon_set(r: &mut Report, ds: &Value) {
    object_meta(r, ds, dns1123_subdomain);
    let spec = &ds["spec"];
    let template_labels = &spec["template"]["metadata"]["labels"];
    for (key, value) in object_entries(&spec["template"]["metadata"], "labels") {
        r.check(
            &format!("spec.template.metadata.labels[{key}]"),
            qualified_name(key),
        );
        r.check(
            &format!("spec.template.metadata.labels[{key}]"),
            label_value(value.as_str().unwrap_or("\u{0}")),
        );
    }
    if !selector_matches(r, &spec["selector"], template_labels) {
        r.fail(
            "spec.template.metadata.labels",
            "`selector` does not match template `labels`",
        );
    }
    match spec.pointer("/template/spec") {
        Some(pod) => pod_spec(r, pod),
        None => r.fail("spec.template.spec", "Required value"),
    }
    if str_of(&spec["updateStrategy"], "type") == Some("RollingUpdate") {
        let rolling = &spec["updateStrategy"]["rollingUpdate"];
        let zero = |v: &Value| v.is_null() || v.as_i64() == Some(0) || v.as_str() == Some("0%");
        if zero(&rolling["maxUnavailable"]) && zero(&rolling["maxSurge"]) {
            r.fail(
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
                "may not be 0 when maxSurge is 0",
            );
        }
    }
}

/// `ValidateRole` / `ValidatePolicyRule` (pkg/apis/rbac/validation): name a path
/// segment; each rule has verbs, and a resource rule has apiGroups and resources;
/// a namespaced Role has no nonResourceURLs.
fn role(r: &mut Report, role: &Value) {
    object_meta(r, role, path_segment_name);
    for (i, rule) in array(role, "rules").iter().enumerate() {
        let at = format!("rules[{i}]");
        if array(rule, "verbs").is_empty() {
            r.fail(
                &format!("{at}.verbs"),
                "verbs must contain at least one value",
            );
        }
        if !array(rule, "nonResourceURLs").is_empty() {
            r.fail(
                &format!("{at}.nonResourceURLs"),
                "namespaced rules cannot apply to non-resource URLs",
            );
            continue;
        }
        if array(rule, "apiGroups").is_empty() {
            r.fail(
                &format!("{at}.apiGroups"),
                "resource rules must supply at least one api group",
            );
        }
        if array(rule, "resources").is_empty() {
            r.fail(
                &format!("{at}.resources"),
                "resource rules must supply at least one resource",
            );
        }
        // resourceNames are object names; an empty string grants nothing.
        for (j, name) in array(rule, "resourceNames").iter().enumerate() {
            if name.as_str().is_none_or(str::is_empty) {
                r.fail(&format!("{at}.resourceNames[{j}]"), "empty name");
            }
        }
    }
}

/// `ValidateRoleBinding` / `ValidateRoleBindingSubject` (pkg/apis/rbac/validation):
/// roleRef in `rbac.authorization.k8s.io`, kind Role or ClusterRole, a valid name;
/// a ServiceAccount subject has apiGroup "" and a DNS-subdomain name.
fn role_binding(r: &mut Report, binding: &Value) {
    object_meta(r, binding, path_segment_name);
    let role_ref = &binding["roleRef"];
    if str_of(role_ref, "apiGroup") != Some("rbac.authorization.k8s.io") {
        r.fail("roleRef.apiGroup", "Unsupported value");
    }
    if !matches!(str_of(role_ref, "kind"), Some("Role" | "ClusterRole")) {
        r.fail("roleRef.kind", "Unsupported value");
    }
    r.check(
        "roleRef.name",
        path_segment_name(str_of(role_ref, "name").unwrap_or_default()),
    );
    for (i, subject) in array(binding, "subjects").iter().enumerate() {
        let at = format!("subjects[{i}]");
        match str_of(subject, "kind") {
            Some("ServiceAccount") => {
                if str_of(subject, "apiGroup").is_some_and(|g| !g.is_empty()) {
                    r.fail(&format!("{at}.apiGroup"), "Unsupported value");
                }
                r.check(
                    &format!("{at}.name"),
                    dns1123_subdomain(str_of(subject, "name").unwrap_or_default()),
                );
            }
            Some("User" | "Group") => {}
            _ => r.fail(&format!("{at}.kind"), "Unsupported value"),
        }
    }
}

/// `ValidateLease` / `ValidateLeaseSpec` (pkg/apis/coordination/validation): name
/// a DNS subdomain; leaseDurationSeconds > 0 and leaseTransitions >= 0 when set;
/// preferredHolder only with a strategy.
fn lease(r: &mut Report, lease: &Value) {
    object_meta(r, lease, dns1123_subdomain);
    let spec = &lease["spec"];
    if spec["leaseDurationSeconds"]
        .as_i64()
        .is_some_and(|d| d <= 0)
    {
        r.fail("spec.leaseDurationSeconds", "must be greater than 0");
    }
    if spec["leaseTransitions"].as_i64().is_some_and(|t| t < 0) {
        r.fail(
            "spec.leaseTransitions",
            "must be greater than or equal to 0",
        );
    }
    if spec.get("preferredHolder").is_some_and(|p| !p.is_null()) && spec.get("strategy").is_none() {
        r.fail(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        );
    }
}

/// apimachinery `pkg/apis/meta/v1/validation` `maxReasonLen` of a Condition.
const CONDITION_REASON_MAX: usize = 1024;
/// apimachinery `pkg/apis/meta/v1/validation` `maxMessageLen` of a Condition.
const CONDITION_MESSAGE_MAX: usize = 32 * 1024;

/// apimachinery `conditionReasonFmt`: `[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?`.
pub fn condition_reason(value: &str) -> Result<(), String> {
    let ok = value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ':'))
        && value.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && value.len() <= CONDITION_REASON_MAX;
    ok.then_some(()).ok_or_else(|| {
        format!("{value:?} is not a condition reason (CamelCase, at most {CONDITION_REASON_MAX})")
    })
}

/// A `conditions` list as apimachinery `pkg/apis/meta/v1/validation`
/// `ValidateConditions` checks `[]metav1.Condition`: types unique, each a qualified
/// name; status True, False or Unknown; lastTransitionTime set; observedGeneration
/// not negative; reason set and [`condition_reason`]; message at most 32 KiB. The
/// API server runs it for built-in kinds; for a custom resource only its schema
/// counts, and k8s-openapi's Condition schema (which our CRDs embed) lacks the
/// markers that carry these rules: this is the contract `kubectl wait
/// --for=condition` and other readers of conditions rely on, held here so a status
/// we write keeps it.
pub fn conditions(list: &Value) -> Vec<String> {
    let mut r = Report::default();
    let items = list.as_array().map_or(&[][..], Vec::as_slice);
    let mut types: Vec<&str> = Vec::new();
    for (i, condition) in items.iter().enumerate() {
        let at = format!("conditions[{i}]");
        let type_ = str_of(condition, "type").unwrap_or_default();
        r.check(&format!("{at}.type"), qualified_name(type_));
        if types.contains(&type_) {
            r.fail(&format!("{at}.type"), "Duplicate value");
        }
        types.push(type_);
        if !matches!(
            str_of(condition, "status"),
            Some("True" | "False" | "Unknown")
        ) {
            r.fail(&format!("{at}.status"), "Unsupported value");
        }
        if str_of(condition, "lastTransitionTime").is_none_or(str::is_empty) {
            r.fail(&format!("{at}.lastTransitionTime"), "must be set");
        }
        if condition["observedGeneration"]
            .as_i64()
            .is_some_and(|g| g < 0)
        {
            r.fail(
                &format!("{at}.observedGeneration"),
                "must be greater than or equal to zero",
            );
        }
        match str_of(condition, "reason") {
            Some(reason) if !reason.is_empty() => {
                r.check(&format!("{at}.reason"), condition_reason(reason));
            }
            _ => r.fail(&format!("{at}.reason"), "must be set"),
        }
        let message = str_of(condition, "message").unwrap_or_default();
        if message.len() > CONDITION_MESSAGE_MAX {
            r.fail(
                &format!("{at}.message"),
                format!("{} bytes; at most {CONDITION_MESSAGE_MAX}", message.len()),
            );
        }
    }
    r.0
}

/// `ValidateEventCreate` for `events.k8s.io/v1` (pkg/apis/core/validation/events.go):
/// name a DNS subdomain; eventTime, reportingController (a qualified name),
/// reportingInstance, action and reason required, each at most 128 characters;
/// note at most 1 KiB; type Normal or Warning; the regarding object in the Event's
/// namespace.
fn event(r: &mut Report, event: &Value) {
    object_meta(r, event, dns1123_subdomain);
    if event.get("eventTime").is_none_or(Value::is_null) {
        r.fail("eventTime", "Required value");
    }
    match str_of(event, "reportingController") {
        Some(c) => r.check("reportingController", qualified_name(c)),
        None => r.fail("reportingController", "Required value"),
    }
    for field in ["reportingInstance", "action", "reason"] {
        match str_of(event, field) {
            Some(v) if !v.is_empty() && v.len() <= EVENT_FIELD_MAX => {}
            Some(v) => r.fail(
                field,
                format!("{} characters; 1 to {EVENT_FIELD_MAX}", v.len()),
            ),
            None => r.fail(field, "Required value"),
        }
    }
    if let Some(note) = str_of(event, "note")
        && note.len() > EVENT_NOTE_MAX_BYTES
    {
        r.fail(
            "note",
            format!("{} bytes; at most {EVENT_NOTE_MAX_BYTES}", note.len()),
        );
    }
    if !matches!(str_of(event, "type"), Some("Normal" | "Warning")) {
        r.fail("type", "Unsupported value");
    }
    let ns = str_of(&event["metadata"], "namespace");
    if let Some(regarding_ns) = str_of(&event["regarding"], "namespace")
        && Some(regarding_ns) != ns
    {
        r.fail("regarding.namespace", "does not match event.namespace");
    }
}

/// A FailoverCluster or ResourceGroup as a write sends it, whole or as a JSON merge
/// patch of a few fields (the checker sees bodies, not content types): metadata as
/// `ValidateObjectMeta` (the name a DNS subdomain, apiextensions' rule for custom
/// resources) and the CRDs' own rule on it (at most 63 characters), the apiVersion of
/// the CRDs, and `spec` against the generated CRD's structural schema (apiextensions
/// `schema/validation`) as a patch: an object may lack required fields and a `null`
/// removes a field (the API server checks both on the merged object, which this
/// checker does not have), while an array is always whole, so its items are checked
/// in full.
fn custom_resource(r: &mut Report, object: &Value, kind: &str) {
    object_meta(r, object, dns1123_subdomain);
    if str_of(&object["metadata"], "name").is_some_and(|n| n.len() > LABEL_VALUE_MAX) {
        r.fail(
            "metadata.name",
            format!("at most {LABEL_VALUE_MAX} characters (the CRD's rule)"),
        );
    }
    if str_of(object, "apiVersion") != Some(crate::api::API_VERSION) {
        r.fail(
            "apiVersion",
            format!(
                "{:?}: the CRDs serve {}",
                object["apiVersion"],
                crate::api::API_VERSION
            ),
        );
    }
    if let Some(spec) = object.get("spec") {
        patch_walk(r, "spec", &spec_schema(kind), spec);
    }
}

/// [`schema_walk`] for a JSON merge patch: `null` removes, objects may be partial;
/// arrays (replaced whole by a merge patch) and scalars are checked in full.
fn patch_walk(r: &mut Report, path: &str, schema: &Value, value: &Value) {
    match value {
        Value::Null => {}
        Value::Object(fields) if str_of(schema, "type") == Some("object") => {
            for (name, field) in fields {
                let at = format!("{path}.{name}");
                match schema["properties"].get(name) {
                    Some(sub) => patch_walk(r, &at, sub, field),
                    None => match schema.get("additionalProperties") {
                        Some(sub) if sub.is_object() => patch_walk(r, &at, sub, field),
                        _ => r.fail(&at, "unknown field (the API server prunes it)"),
                    },
                }
            }
        }
        _ => schema_walk(r, path, schema, value),
    }
}

/// The spec schema of the generated CRD of `kind`.
pub fn spec_schema(kind: &str) -> Value {
    let crd = crate::api::crd::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD of kind {kind}"));
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap_or_default();
    schema["openAPIV3Schema"]["properties"]["spec"].clone()
}

/// The API server's create/apply validation of `object` (by its `kind`): every
/// violation with its field path; empty when the API server would accept it.
pub fn validate(object: &Value) -> Vec<String> {
    let mut r = Report::default();
    match str_of(object, "kind") {
        Some("ConfigMap") => {
            object_meta(&mut r, object, dns1123_subdomain);
            data_keys(&mut r, object, &["data", "binaryData"]);
        }
        Some("Secret") => {
            object_meta(&mut r, object, dns1123_subdomain);
            data_keys(&mut r, object, &["data", "stringData"]);
        }
        // ValidateServiceAccountName: a DNS subdomain.
        Some("ServiceAccount") => object_meta(&mut r, object, dns1123_subdomain),
        Some("DaemonSet") => daemon_set(&mut r, object),
        Some("Role") => role(&mut r, object),
        Some("RoleBinding") => role_binding(&mut r, object),
        Some("Lease") => lease(&mut r, object),
        Some("Event") => event(&mut r, object),
        Some(kind @ ("FailoverCluster" | "ResourceGroup")) => custom_resource(&mut r, object, kind),
        other => r.fail("kind", format!("{other:?}: no rules known; add them here")),
    }
    r.0
}

/// The update rules on top of [`validate`]: a DaemonSet's `spec.selector`
/// (`ValidateDaemonSetUpdate`) and a RoleBinding's `roleRef`
/// (`ValidateRoleBindingUpdate`) are immutable.
pub fn validate_update(old: &Value, new: &Value) -> Vec<String> {
    let mut violations = validate(new);
    match str_of(new, "kind") {
        Some("DaemonSet") if old["spec"]["selector"] != new["spec"]["selector"] => {
            violations.push("spec.selector: field is immutable".to_owned());
        }
        Some("RoleBinding") if old["roleRef"] != new["roleRef"] => {
            violations.push("roleRef: cannot change roleRef".to_owned());
        }
        _ => {}
    }
    violations
}

/// The structural-schema checks the API server applies to a custom resource's
/// status (apiextensions-apiserver `schema/validation`, OpenAPI v3 subset the
/// generated CRDs use): types, `required`, `enum`, `nullable`, `maxLength`,
/// `minimum`/`maximum`, `maxItems`, per property and item.
pub fn validate_against_schema(schema: &Value, value: &Value) -> Vec<String> {
    let mut r = Report::default();
    schema_walk(&mut r, "status", schema, value);
    r.0
}

fn schema_walk(r: &mut Report, path: &str, schema: &Value, value: &Value) {
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            r.fail(path, "null, and the schema is not nullable");
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            r.fail(path, "must be an integer or a string");
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        r.fail(path, format!("Unsupported value {value}"));
    }
    match str_of(schema, "type") {
        Some("object") => {
            let Some(fields) = value.as_object() else {
                return r.fail(path, "must be an object");
            };
            for required in array(schema, "required") {
                if let Some(name) = required.as_str()
                    && !fields.contains_key(name)
                {
                    r.fail(&format!("{path}.{name}"), "Required value");
                }
            }
            for (name, field) in fields {
                let at = format!("{path}.{name}");
                match schema["properties"].get(name) {
                    Some(sub) => schema_walk(r, &at, sub, field),
                    None => match schema.get("additionalProperties") {
                        Some(sub) if sub.is_object() => schema_walk(r, &at, sub, field),
                        // Pruned by the API server, not refused: still a field we
                        // believe we write and nobody will ever read.
                        _ => r.fail(&at, "unknown field (the API server prunes it)"),
                    },
                }
            }
        }
        Some("array") => {
            let Some(items) = value.as_array() else {
                return r.fail(path, "must be an array");
            };
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                r.fail(path, format!("more than {max} items"));
            }
            for (i, item) in items.iter().enumerate() {
                schema_walk(r, &format!("{path}[{i}]"), &schema["items"], item);
            }
        }
        Some("string") => match value.as_str() {
            Some(s) => {
                if let Some(max) = schema["maxLength"].as_u64()
                    && s.chars().count() as u64 > max
                {
                    r.fail(path, format!("longer than {max} characters"));
                }
            }
            None => r.fail(path, "must be a string"),
        },
        Some("integer") | Some("number") => {
            let Some(n) = value.as_f64() else {
                return r.fail(path, "must be a number");
            };
            if str_of(schema, "type") == Some("integer") && !(value.is_i64() || value.is_u64()) {
                r.fail(path, "must be an integer");
            }
            if schema["minimum"].as_f64().is_some_and(|m| n < m) {
                r.fail(path, "below the minimum");
            }
            if schema["maximum"].as_f64().is_some_and(|m| n > m) {
                r.fail(path, "above the maximum");
            }
        }
        Some("boolean") if !value.is_boolean() => r.fail(path, "must be a boolean"),
        _ => {}
    }
}

/// The status schema of the generated CRD of `kind`.
pub fn status_schema(kind: &str) -> Value {
    let crd = crate::api::crd::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD of kind {kind}"));
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap_or_default();
    schema["openAPIV3Schema"]["properties"]["status"].clone()
}
