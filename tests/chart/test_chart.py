"""Tests of the Helm chart in charts/failover-operator, with real Helm.

Helm's own Go SDK (helm-python-sdk, import name `helm_python`) lints and renders
the chart offline, exactly as `helm lint` and `helm template` would. The rendered
documents of every scenario are also written to $CHART_RENDERED_DIR (default
target/chart-rendered) so tests/chart_manifests.rs can deserialize each one into its
k8s-openapi type; tests/chart/run.sh runs both.

Run with tests/chart/run.sh (it makes the virtualenv).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "failover-operator"
RELEASE = "failover"
NAMESPACE = "failover-system"
RENDERED = Path(
    os.environ.get(
        "CHART_RENDERED_DIR",
        Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "chart-rendered",
    )
)

# Every toggle of values.yaml switched on, plus every optional value given.
ALL_TOGGLES = {
    "serviceMonitor": {"enabled": True, "agents": True, "labels": {"release": "prom"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
    "networkPolicy": {
        "enabled": True,
        "metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "apiServerCIDRs": ["10.96.0.1/32", "192.0.2.10/32"],
    },
    "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
    "watchNamespace": "team-a",
    "priorityClassName": "system-cluster-critical",
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "podAnnotations": {"example.com/note": "yes"},
    "podLabels": {"team": "platform"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
    "agent": {
        "image": {"repository": "registry.example.com/agent", "tag": "9.9.9", "pullPolicy": "Always"},
        "resources": {"requests": {"cpu": "20m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
    },
    "serviceAccount": {"create": True, "name": "fo", "annotations": {"a": "b"}},
    "grafana": {"dashboard": {"enabled": True, "annotations": {"grafana_folder": "Failover"}}},
}

# Everything optional switched off.
ALL_OFF = {
    "serviceMonitor": {"enabled": False},
    "prometheusRule": {"enabled": False},
    "networkPolicy": {"enabled": False},
    "podDisruptionBudget": {"enabled": False},
    "serviceAccount": {"create": False, "name": "existing-sa"},
}

SCENARIOS = {"defaults": {}, "all-toggles": ALL_TOGGLES, "all-off": ALL_OFF}

# Kinds the chart may render, and whether they are namespaced.
KNOWN_KINDS = {
    ("v1", "ServiceAccount"): True,
    ("v1", "Service"): True,
    ("v1", "ConfigMap"): True,
    ("apps/v1", "Deployment"): True,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
    ("rbac.authorization.k8s.io/v1", "Role"): True,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): True,
    ("policy/v1", "PodDisruptionBudget"): True,
    ("networking.k8s.io/v1", "NetworkPolicy"): True,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): True,
    ("monitoring.coreos.com/v1", "PodMonitor"): True,
    ("monitoring.coreos.com/v1", "PrometheusRule"): True,
}


def render(values: dict | None = None) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values or {})
        return chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)


def documents(values: dict | None = None) -> list[dict]:
    """Every non-empty YAML document of the rendered templates (NOTES.txt excluded)."""
    docs = []
    for path, text in sorted(render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                doc["__template__"] = path
                docs.append(doc)
    return docs


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_container(docs: list[dict]) -> dict:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return containers[0]


@pytest.fixture(scope="session", params=sorted(SCENARIOS))
def scenario(request) -> tuple[str, list[dict]]:
    return request.param, documents(SCENARIOS[request.param])


# --- lint -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_lint_strict_has_no_errors_or_warnings(name):
    report = helm.lint(CHART, SCENARIOS[name], strict=True, namespace=NAMESPACE, kube_version="v1.33.0")
    assert report["total_charts_linted"] == 1
    assert report["errors"] == [], report
    # Severity 1 is info ("icon is recommended"); 2 warning, 3 error.
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


def test_chart_metadata_follows_the_crate():
    with helm.Chart.load(CHART) as chart:
        metadata = chart.metadata
    cargo = (ROOT / "Cargo.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', cargo, re.MULTILINE).group(1)
    assert metadata["apiVersion"] == "v2"
    assert metadata["appVersion"] == version, "appVersion must equal the crate version"
    assert metadata["version"] == version, "chart version follows the crate version"


# --- values schema ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"replicas": "two"},
        {"replicas": 0},
        {"image": {"pullPolicy": "Sometimes"}},
        {"log": {"format": "xml"}},
        {"metrics": {"port": 80}},
        {"leaderElection": {"leaseDurationSeconds": 1}},
        {"serviceMonitor": {"enabeld": True}},
        {"typo": 1},
    ],
)
def test_schema_rejects_bad_values(bad):
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(bad)


def test_every_value_is_described_in_the_schema():
    with helm.Chart.load(CHART) as chart:
        schema = chart.schema
        values = chart.values

    def walk(node: dict, value, path: str):
        assert "description" in node or path == "", f"{path}: no description in values.schema.json"
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path}: typos must be rejected"
            for key, sub in value.items():
                assert key in node["properties"], f"{path}.{key}: not in values.schema.json"
                walk(node["properties"][key], sub, f"{path}.{key}")

    walk(schema, values, "")


def test_every_value_is_commented_in_values_yaml():
    lines = (CHART / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-zA-Z]\w*:", line):
            previous = lines[i - 1] if i else ""
            assert previous.startswith("#") or previous.startswith("  "), (
                f"values.yaml line {i + 1}: top-level key {line!r} without a comment above"
            )


# --- rendering ----------------------------------------------------------------------


def test_every_document_is_a_known_kind_with_required_fields(scenario):
    name, docs = scenario
    assert docs, f"{name}: nothing rendered"
    seen = set()
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        assert key in KNOWN_KINDS, f"{doc['__template__']}: unknown kind {key}"
        meta = doc.get("metadata") or {}
        assert meta.get("name"), f"{doc['__template__']}: no metadata.name"
        assert len(meta["name"]) <= 63, meta["name"]
        if KNOWN_KINDS[key]:
            assert meta.get("namespace") == NAMESPACE, f"{key} {meta['name']}: namespace"
        else:
            assert "namespace" not in meta, f"{key} {meta['name']}: cluster-scoped with a namespace"
        labels = meta.get("labels") or {}
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        assert labels.get("app.kubernetes.io/instance") == RELEASE
        ident = (doc["kind"], meta["name"])
        assert ident not in seen, f"duplicate {ident}"
        seen.add(ident)


def test_defaults_render_the_core_objects_and_no_optional_ones():
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    )


def test_every_toggle_renders_its_object():
    kinds = {d["kind"] for d in documents(ALL_TOGGLES)}
    for kind in ["ServiceMonitor", "PodMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget", "ConfigMap"]:
        assert kind in kinds, kind
    off = {d["kind"] for d in documents(ALL_OFF)}
    for kind in ["ServiceMonitor", "PodMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"]:
        assert kind not in off, kind


def test_args_follow_the_values():
    docs = documents(ALL_TOGGLES | {"metrics": {"port": 9191}, "leaderElection": {"leaseDurationSeconds": 30}})
    container = operator_container(docs)
    args = container["args"]
    assert args[0] == "operator"
    assert "--agent-image=registry.example.com/agent:9.9.9" in args
    assert "--agent-image-pull-policy=Always" in args
    assert "--metrics-addr=0.0.0.0:9191" in args
    assert "--lease-duration-secs=30" in args
    assert "--watch-namespace=team-a" in args
    assert container["ports"] == [{"name": "metrics", "containerPort": 9191, "protocol": "TCP"}]
    env = {e["name"]: e for e in container["env"]}
    assert json.loads(env["FAILOVER_AGENT_RESOURCES"]["value"]) == ALL_TOGGLES["agent"]["resources"]
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["port"] == 9191
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    # Long enough for the leader to finish and release its Lease.
    assert pod["terminationGracePeriodSeconds"] > 30
    netpol = one(docs, "NetworkPolicy")
    assert netpol["spec"]["ingress"][0]["ports"][0]["port"] == 9191


def image_script_name() -> str:
    """The name e2e/image.sh gives the image it builds (IMAGE_NAME=...)."""
    script = (ROOT / "e2e" / "image.sh").read_text()
    return re.search(r"^IMAGE_NAME=(\S+)$", script, re.MULTILINE).group(1)


def test_defaults_use_the_operator_image_for_the_agent():
    # The default image is the one e2e/image.sh builds (docs/install.md, section 1).
    image = f"{image_script_name()}:0.1.0"
    container = operator_container(documents())
    assert container["image"] == image
    assert f"--agent-image={image}" in container["args"]
    assert not any(a.startswith("--watch-namespace") for a in container["args"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RUST_LOG"] == "info" and env["FAILOVER_LOG_FORMAT"] == "json"
    assert "FAILOVER_AGENT_RESOURCES" not in env
    # The agents run at real-time priority unless told otherwise.
    assert env["FAILOVER_AGENT_REALTIME_PRIORITY"] == "50"


def test_agent_realtime_priority_can_be_turned_off_and_is_bounded():
    container = operator_container(documents({"agent": {"realtimePriority": 0}}))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FAILOVER_AGENT_REALTIME_PRIORITY"] == "0"
    with pytest.raises(helm.HelmValuesError):
        render({"agent": {"realtimePriority": 100}})


def test_two_replicas_spread_and_protected():
    docs = documents()
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= selector.items()
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == (
        "kubernetes.io/hostname"
    )
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert pdb["spec"]["maxUnavailable"] == 1
    service = one(docs, "Service")
    assert service["spec"]["selector"] == selector


def test_probes_hit_the_health_endpoints():
    container = operator_container(documents())
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


# --- security -----------------------------------------------------------------------


def test_operator_runs_non_root_read_only_without_capabilities(scenario):
    _, docs = scenario
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["limits"]["memory"]


def rules_of(docs: list[dict]) -> list[tuple[str, dict]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", rule)
        for d in docs
        if d["kind"] in ("ClusterRole", "Role")
        for rule in d.get("rules", [])
    ]


def test_rbac_has_no_wildcards(scenario):
    _, docs = scenario
    rules = rules_of(docs)
    assert rules
    for owner, rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            for item in rule.get(field, []):
                assert "*" not in item, f"{owner}: wildcard in {field}: {rule}"
        assert "escalate" not in rule["verbs"] and "bind" not in rule["verbs"], f"{owner}: {rule}"
        assert "impersonate" not in rule["verbs"], f"{owner}: {rule}"


def test_rbac_never_writes_a_spec():
    for owner, rule in rules_of(documents()):
        if "failover.dev" in rule["apiGroups"]:
            for resource in rule["resources"]:
                if not resource.endswith("/status"):
                    assert set(rule["verbs"]) <= {"get", "list", "watch"}, f"{owner}: {rule}"
                else:
                    assert set(rule["verbs"]) == {"patch"}, f"{owner}: {rule}"


def test_rbac_holds_every_permission_it_grants_the_agents():
    """The agents' Role (notes/k8s-contract.md, rendered by the operator) grants
    these; without `escalate` the operator may only grant what it holds."""
    agent_role = [
        ("", "configmaps", {"get", "list", "watch"}),
        ("", "secrets", {"get", "list", "watch"}),
        ("coordination.k8s.io", "leases", {"create", "get", "update"}),
        ("events.k8s.io", "events", {"create", "patch"}),
    ]
    cluster_role = one(documents(), "ClusterRole")
    for group, resource, verbs in agent_role:
        held = set()
        for rule in cluster_role["rules"]:
            if group in rule["apiGroups"] and resource in rule["resources"] and not rule.get("resourceNames"):
                held |= set(rule["verbs"])
        assert verbs <= held, f"{group}/{resource}: grants {verbs}, holds {held}"


def test_every_rbac_rule_has_a_comment_saying_why():
    for template in ("clusterrole.yaml", "leader-election-role.yaml"):
        lines = (CHART / "templates" / template).read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("- apiGroups:"):
                assert lines[i - 1].strip().startswith("#"), f"{template}:{i + 1}: rule without a comment"


def test_bindings_name_the_operator_service_account():
    for name, values in SCENARIOS.items():
        docs = documents(values)
        account = one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
        for binding in by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding"):
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
            ], name
            role_kind = "ClusterRole" if binding["kind"] == "ClusterRoleBinding" else "Role"
            assert binding["roleRef"]["kind"] == role_kind
            assert binding["roleRef"]["name"] in {d["metadata"]["name"] for d in by_kind(docs, role_kind)}


# --- monitoring ---------------------------------------------------------------------

ALERTS = {
    "FailoverQuorumLost",
    "FailoverMemberDown",
    "FailoverHeartbeatLinkDown",
    "FailoverGroupFailed",
    "FailoverConfigInvalid",
    "FailoverFailoverRateHigh",
    "FailoverHappened",
}


# Where the metrics are registered, and the prefix of each registry.
METRIC_SOURCES = [
    (ROOT / "src" / "agent" / "metrics.rs", "failover_"),
    (ROOT / "src" / "operator" / "metrics.rs", "failover_operator_"),
]


def metric_names() -> set[str]:
    """Series names the code exports: prometheus-client adds `_total` to counters, and
    a histogram is its `_bucket`, `_sum` and `_count` series."""
    names = set()
    for path, prefix in METRIC_SOURCES:
        text = path.read_text()
        registered = re.findall(r'register\(\s*"(\w+)",\s*"[^"]*",\s*m\.(\w+)\.clone\(\)', text)
        assert registered, f"{path}: no registrations found"
        for name, field in registered:
            kind = re.search(rf"\b{field}: ([\w<>, ()-]+?),?\n", text)
            assert kind, f"{path}: no type for field {field}"
            full = prefix + name
            if "Counter" in kind.group(1):
                names.add(full + "_total")
            elif "Histogram" in kind.group(1):
                names.update(full + suffix for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(full)
    return names


def promql_metrics(expr: str) -> set[str]:
    """The `failover_*` metric names of a PromQL expression: label matchers, grouping
    clauses and label arguments (label_values' second one) are not metric names."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r",\s*\w+\s*\)", ")", expr)
    return set(re.findall(r"\bfailover_\w+", expr))


def test_prometheus_rule_has_the_alerts_and_uses_known_metrics():
    rule = one(documents(ALL_TOGGLES), "PrometheusRule")
    rules = rule["spec"]["groups"][0]["rules"]
    assert ALERTS <= {r["alert"] for r in rules}
    known = metric_names()
    assert "failover_quorum" in known and "failover_failovers_total" in known, known
    for r in rules:
        # Metric names, not the label names of `by (...)` clauses.
        used = promql_metrics(r["expr"])
        assert used, r["alert"]
        assert used <= known, f"{r['alert']}: unknown metrics {used - known}"
        assert r["labels"]["severity"] in {"warning", "critical"}
        assert r["annotations"]["summary"]
        # Prometheus templates survive Helm's rendering.
        assert "{{ $labels" in json.dumps(r["annotations"]) or r["alert"].startswith("FailoverOperatorNo")


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every templating query."""
    queries = []

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append((f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query))
    return queries


def test_grafana_dashboard_uses_only_metrics_the_code_exports():
    docs = documents(ALL_TOGGLES)
    config_map = one(docs, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Failover"}
    dashboard = json.loads(config_map["data"]["failover-operator.json"])
    assert dashboard["uid"] and dashboard["title"]
    # The file in the chart is what the ConfigMap carries, byte for byte.
    assert config_map["data"]["failover-operator.json"] == (CHART / "dashboards" / "failover-operator.json").read_text().rstrip("\n")
    known = metric_names()
    queries = dashboard_queries(dashboard)
    assert queries
    used_everywhere = set()
    for where, expr in queries:
        used = promql_metrics(expr)
        assert used, f"{where}: no failover metric in {expr!r}"
        assert used <= known, f"{where}: metrics the code does not export: {sorted(used - known)}"
        used_everywhere |= used
    # The panels the issue asks for: members and quorum, failovers with their phases,
    # heartbeat loss, config sync.
    for metric in [
        "failover_peer_up",
        "failover_quorum",
        "failover_failovers_total",
        "failover_phase_seconds_bucket",
        "failover_heartbeats_dropped_total",
        "failover_heartbeats_received_total",
        "failover_config_reloads_total",
        "failover_operator_cluster_config_valid",
    ]:
        assert metric in used_everywhere, f"no panel shows {metric}"
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids)), "panel ids must be unique"


def test_promql_metrics_ignores_labels_and_catches_unknown_names():
    expr = 'sum by (failover_dev_cluster) (rate(failover_nope_total{failover_dev_cluster=~"$c"}[5m]))'
    assert promql_metrics(expr) == {"failover_nope_total"}
    assert promql_metrics("label_values(failover_quorum{namespace=~\"$n\"}, failover_dev_cluster)") == {"failover_quorum"}
    assert "failover_nope_total" not in metric_names()


def test_grafana_dashboard_label_and_namespace_follow_the_values():
    values = {"grafana": {"dashboard": {"enabled": True, "label": "example.com/dashboard", "labelValue": "yes", "namespace": "monitoring"}}}
    config_map = one(documents(values), "ConfigMap")
    assert config_map["metadata"]["labels"]["example.com/dashboard"] == "yes"
    assert "grafana_dashboard" not in config_map["metadata"]["labels"]
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert "annotations" not in config_map["metadata"]


def test_monitors_scrape_the_metrics_ports():
    docs = documents(ALL_TOGGLES)
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    service_labels = one(docs, "Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    pods = one(docs, "PodMonitor")
    # The agent DaemonSet's pods (notes/k8s-contract.md): app.kubernetes.io/name=failover-agent,
    # container port named `metrics`.
    assert pods["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "failover-agent"}
    assert pods["spec"]["namespaceSelector"] == {"any": True}
    assert pods["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


# --- CRDs ---------------------------------------------------------------------------


def test_chart_crds_are_identical_to_the_top_level_crds():
    top = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert chart == top, "sync with: cp crds/*.yaml charts/failover-operator/crds/"
    for name in top:
        assert (CHART / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), (
            f"charts/failover-operator/crds/{name} differs; sync with: cp crds/*.yaml charts/failover-operator/crds/"
        )
    with helm.Chart.load(CHART) as loaded:
        assert sorted(Path(c["filename"]).name for c in loaded.crds) == top


# --- output for the Rust deserialization test ------------------------------------------


def test_write_rendered_documents_for_the_rust_check():
    """Writes one file per document; tests/chart_manifests.rs reads them."""
    if RENDERED.exists():
        shutil.rmtree(RENDERED)
    count = 0
    for name, values in SCENARIOS.items():
        out = RENDERED / name
        out.mkdir(parents=True)
        for i, doc in enumerate(documents(values)):
            doc.pop("__template__")
            path = out / f"{i:02}-{doc['kind']}-{doc['metadata']['name']}.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            count += 1
    assert count >= 3 * 8


def test_notes_tell_the_user_what_to_do_next():
    notes = render(ALL_TOGGLES)["failover-operator/templates/NOTES.txt"]
    assert "kubectl get fc,rg" in notes and " -w" in notes
    assert "kubectl apply -n NS -f examples/" in notes
    assert "pod-security.kubernetes.io/enforce=privileged" in notes
    assert f"-n {NAMESPACE} get lease failover-operator-leader" in notes
    assert "watching namespace team-a" in notes
    warning = render({"prometheusRule": {"enabled": True}})["failover-operator/templates/NOTES.txt"]
    assert "WARNING: prometheusRule.enabled without serviceMonitor.enabled" in warning
    assert "WARNING" not in notes


def test_an_existing_service_account_must_be_named():
    with pytest.raises(helm.HelmError, match="serviceAccount.name is required"):
        render({"serviceAccount": {"create": False}})
    docs = documents({"serviceAccount": {"create": False, "name": "mine"}, "image": {"tag": "1.2.3"}})
    assert not by_kind(docs, "ServiceAccount")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mine"
    assert pod["containers"][0]["image"].endswith(":1.2.3")
    assert f"--agent-image={image_script_name()}:1.2.3" in pod["containers"][0]["args"]
