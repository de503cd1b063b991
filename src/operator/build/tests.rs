//! Tests of the rendering of the objects the operator owns: the heartbeat Secret,
//! the agent's DaemonSet and RBAC, the Leases, and every rendered object against the
//! API server's validation rules (with the known-bad variants of them those rules
//! must refuse).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::{self as build, AgentSettings, KEY_LEN, KEY_ROTATION_OVERLAP};
use crate::api::{FailoverCluster, QuorumMode, ResourceGroup};
use crate::contract::names;
use crate::contract::render::render_config;
use crate::operator::config::{NodeAddress, resolve_addresses};
use crate::operator::fixtures::{ClusterFixture, NS, cluster, group, node_lease, settings};
use crate::operator::status::{Reports, cluster_status, group_status};
use crate::testing::apiserver_rules;

fn secret_key(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
}

#[test]
fn the_heartbeat_key_is_generated_once_and_rotated_on_request() {
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let c = cluster();
    let first = build::heartbeat_secret(&c, None, t0, [1; KEY_LEN]);
    assert!(first.new_key);
    assert_eq!(
        secret_key(&first.secret, names::KEY),
        Some(vec![1; KEY_LEN])
    );
    assert_eq!(first.secret.owner_references().len(), 1);

    // Reconciling again keeps the key whatever random bytes are offered.
    let again = build::heartbeat_secret(
        &c,
        Some(&first.secret),
        t0 + Duration::from_secs(60),
        [2; KEY_LEN],
    );
    assert!(!again.new_key);
    assert_eq!(again.secret, first.secret);

    // Rotation: the annotation's new value rotates once, keeping the old key.
    let mut rotate = c.clone();
    rotate
        .annotations_mut()
        .insert(names::ROTATE_KEY.into(), "1".into());
    let t1 = t0 + Duration::from_secs(120);
    let rotated = build::heartbeat_secret(&rotate, Some(&first.secret), t1, [3; KEY_LEN]);
    assert!(rotated.new_key);
    assert_eq!(
        secret_key(&rotated.secret, names::KEY),
        Some(vec![3; KEY_LEN])
    );
    assert_eq!(
        secret_key(&rotated.secret, names::PREVIOUS_KEY),
        Some(vec![1; KEY_LEN])
    );
    assert_eq!(rotated.revisit_after, Some(KEY_ROTATION_OVERLAP));
    assert_eq!(
        rotated.secret.annotations()[names::ROTATED_AT],
        t1.to_string()
    );

    let t2 = t1 + Duration::from_secs(30);
    let same = build::heartbeat_secret(&rotate, Some(&rotated.secret), t2, [4; KEY_LEN]);
    assert!(!same.new_key, "the same annotation value rotates only once");
    assert_eq!(secret_key(&same.secret, names::KEY), Some(vec![3; KEY_LEN]));
    assert_eq!(
        secret_key(&same.secret, names::PREVIOUS_KEY),
        Some(vec![1; KEY_LEN])
    );

    // After the overlap the previous key is gone.
    let later = build::heartbeat_secret(
        &rotate,
        Some(&rotated.secret),
        t1 + KEY_ROTATION_OVERLAP + Duration::from_secs(1),
        [5; KEY_LEN],
    );
    assert_eq!(
        secret_key(&later.secret, names::KEY),
        Some(vec![3; KEY_LEN])
    );
    assert_eq!(secret_key(&later.secret, names::PREVIOUS_KEY), None);
    assert_eq!(later.revisit_after, None);
}

#[test]
fn the_agent_daemon_set_runs_on_exactly_the_members_with_two_capabilities() {
    let c = cluster().member("c").dead_after("1500ms");
    let ds = build::daemon_set(&c, &settings());
    assert_eq!(ds.name_any(), "c-agent");
    assert_eq!(ds.owner_references()[0].uid, "uid-c");
    assert_eq!(ds.owner_references()[0].controller, Some(true));
    let spec = ds.spec.unwrap();
    let labels = spec.selector.match_labels.unwrap();
    assert_eq!(labels[names::APP_LABEL], "failover-agent");
    let pod = spec.template.spec.unwrap();
    let terms = pod
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms;
    // One term per member, each with a single-valued metadata.name requirement: the
    // API server refuses a field requirement with several values (issue 9, finding 1).
    let selected: Vec<Vec<String>> = terms
        .iter()
        .map(|t| {
            let fields = t.match_fields.clone().unwrap();
            assert_eq!(fields.len(), 1);
            assert_eq!(fields[0].key, "metadata.name");
            assert_eq!(fields[0].operator, "In");
            fields[0].values.clone().unwrap()
        })
        .collect();
    assert_eq!(selected, [["a"], ["b"], ["c"]]);
    assert_eq!(
        pod.tolerations.unwrap()[0].operator.as_deref(),
        Some("Exists")
    );
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(pod.service_account_name.as_deref(), Some("c-agent"));
    // ceil(1.5 s) + 5 s of graceful leave.
    assert_eq!(pod.termination_grace_period_seconds, Some(7));
    let agent = &pod.containers[0];
    assert_eq!(
        agent.image.as_deref(),
        Some("registry.example/failover:1.2.3")
    );
    assert_eq!(agent.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(
        agent.args.clone().unwrap(),
        [
            "agent",
            "--cluster",
            "c",
            "--namespace",
            "ns",
            "--metrics-addr",
            "0.0.0.0:7707"
        ]
    );
    let env = &agent.env.clone().unwrap()[0];
    assert_eq!(env.name, "NODE_NAME");
    assert_eq!(
        env.value_from
            .clone()
            .unwrap()
            .field_ref
            .unwrap()
            .field_path,
        "spec.nodeName"
    );
    let sc = agent.security_context.clone().unwrap();
    assert_eq!(sc.privileged, Some(false));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    let caps = sc.capabilities.unwrap();
    assert_eq!(caps.add.unwrap(), ["NET_ADMIN", "NET_RAW", "SYS_NICE"]);
    assert_eq!(caps.drop.unwrap(), ["ALL"]);
    let realtime = agent.env.clone().unwrap();
    assert_eq!(realtime[1].name, "FAILOVER_REALTIME_PRIORITY");
    assert_eq!(realtime[1].value.as_deref(), Some("50"));
    // Priority 0: normal scheduling, and no SYS_NICE.
    let normal = build::daemon_set(
        &cluster(),
        &AgentSettings {
            realtime_priority: 0,
            ..settings()
        },
    );
    let normal = &normal.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(normal.env.as_ref().unwrap().len(), 1);
    let caps = normal
        .security_context
        .clone()
        .unwrap()
        .capabilities
        .unwrap();
    assert_eq!(caps.add.unwrap(), ["NET_ADMIN", "NET_RAW"]);
    let resources = agent.resources.clone().unwrap();
    assert!(resources.requests.unwrap().contains_key("memory"));
    assert!(resources.limits.unwrap().contains_key("memory"));
    for (probe, path) in [
        (&agent.liveness_probe, "/healthz"),
        (&agent.readiness_probe, "/readyz"),
    ] {
        let get = probe.clone().unwrap().http_get.unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
    }
    let ports = agent.ports.clone().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p.name.as_deref() == Some("metrics") && p.container_port == 7707)
    );
}

#[test]
fn the_agent_role_names_only_this_clusters_objects() {
    let groups = [group("web", "10.77.0.100/24")];
    let c = cluster();
    let role = build::role(&c, &groups);
    assert_eq!(role.owner_references()[0].uid, "uid-c");
    let rules = role.rules.unwrap();
    let find = |resource: &str, verb: &str| {
        rules
            .iter()
            .find(|r| {
                r.resources.as_ref().unwrap()[0] == resource && r.verbs.iter().any(|v| v == verb)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {verb} on {resource}"))
    };
    assert_eq!(
        find("configmaps", "watch").resource_names.unwrap(),
        ["c-config"]
    );
    assert_eq!(
        find("secrets", "get").resource_names.unwrap(),
        ["c-heartbeat"]
    );
    // The operator creates every Lease; the agent only reads and updates them by name.
    assert!(
        rules
            .iter()
            .filter(|r| r.resources.as_ref().unwrap()[0] == "leases")
            .all(|r| r.resource_names.is_some() && !r.verbs.iter().any(|v| v == "create"))
    );
    assert_eq!(
        find("leases", "update").resource_names.unwrap(),
        ["c-group-web", "c-node-a", "c-node-b"]
    );
    assert_eq!(
        find("events", "create").api_groups.unwrap(),
        ["events.k8s.io"]
    );
    // No verb beyond these anywhere.
    let verbs: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.verbs.iter().map(String::as_str))
        .collect();
    assert!(
        verbs
            .iter()
            .all(|v| ["get", "list", "watch", "create", "update", "patch"].contains(v))
    );
    assert!(!verbs.contains(&"delete"));
    let witness = build::role(&c.clone().witness(), &groups).rules.unwrap();
    assert!(witness.iter().any(|r| {
        r.resource_names
            .as_ref()
            .is_some_and(|n| n.contains(&"c-witness".to_owned()))
    }));
    // With `failover witness` the agents never touch the Lease: no grant on it.
    let process = build::role(&c.clone().witness_process("10.77.0.9"), &groups)
        .rules
        .unwrap();
    assert!(process.iter().all(|r| {
        r.resource_names
            .as_ref()
            .is_none_or(|n| !n.contains(&"c-witness".to_owned()))
    }));

    let binding = build::role_binding(&c);
    assert_eq!(binding.role_ref.name, "c-agent");
    assert_eq!(binding.subjects.unwrap()[0].namespace.as_deref(), Some(NS));
    assert_eq!(build::service_account(&c).owner_references().len(), 1);
}

#[test]
fn leases_are_created_empty_one_per_group_and_the_witness_only_when_it_is_the_witness() {
    let groups = [
        group("web", "10.77.0.100/24"),
        group("db", "10.77.0.101/24"),
    ];
    let leases = build::leases(&cluster().dead_after("2500ms"), &groups);
    let names: Vec<_> = leases.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["c-group-web", "c-group-db"]);
    for lease in &leases {
        let spec = lease.spec.clone().unwrap();
        assert_eq!(spec.holder_identity, None);
        assert_eq!(spec.lease_duration_seconds, Some(3));
        assert_eq!(lease.owner_references()[0].uid, "uid-c");
        assert_eq!(lease.labels()[names::CLUSTER_LABEL], "c");
    }
    let witness = build::leases(&cluster().witness(), &[]);
    assert_eq!(witness.len(), 1);
    assert_eq!(witness[0].name_any(), "c-witness");
    // `failover witness` replaces the Lease.
    assert!(build::leases(&cluster().witness_process("10.77.0.9"), &[]).is_empty());
}

#[test]
fn agent_resources_come_from_the_operator_settings() {
    let c = cluster();
    let container = |ds: &k8s_openapi::api::apps::v1::DaemonSet| {
        ds.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .resources
            .clone()
            .unwrap()
    };
    let default = container(&build::daemon_set(&c, &settings()));
    assert_eq!(default, build::default_agent_resources());
    assert!(
        !default.limits.unwrap().contains_key("cpu"),
        "no CPU limit by default"
    );
    let custom: k8s_openapi::api::core::v1::ResourceRequirements =
        serde_json::from_str(r#"{"requests":{"cpu":"100m","memory":"64Mi"}}"#).unwrap();
    let mut with = settings();
    with.resources = Some(custom.clone());
    assert_eq!(container(&build::daemon_set(&c, &with)), custom);
}

/// Every object a reconciliation of `c` renders, as the JSON the API server receives.
fn rendered(c: &FailoverCluster, groups: &[ResourceGroup]) -> Vec<Value> {
    let rendered = render_config(
        &resolve_addresses(c, |_| NodeAddress::Ip("10.0.0.9".into())).unwrap(),
        groups,
    )
    .unwrap();
    let secret = build::heartbeat_secret(c, None, Timestamp::now(), [1; KEY_LEN]).secret;
    let mut objects = vec![
        serde_json::to_value(build::config_map(c, &rendered)).unwrap(),
        serde_json::to_value(secret).unwrap(),
        serde_json::to_value(build::service_account(c)).unwrap(),
        serde_json::to_value(build::role(c, groups)).unwrap(),
        serde_json::to_value(build::role_binding(c)).unwrap(),
        serde_json::to_value(build::daemon_set(c, &settings())).unwrap(),
    ];
    objects.extend(
        build::leases(c, groups)
            .iter()
            .chain(&build::node_leases(c))
            .map(|l| serde_json::to_value(l).unwrap()),
    );
    objects
}

#[test]
fn the_api_server_rules_refuse_the_known_bad_objects() {
    let groups = [group("web", "10.77.0.100/24")];
    let c = cluster().member("c");
    let objects = rendered(&c, &groups);
    let by_kind = |kind: &str| objects.iter().find(|o| o["kind"] == kind).cloned().unwrap();
    let refused = |object: &Value, what: &str| {
        let violations = apiserver_rules::validate(object);
        assert!(
            violations.iter().any(|v| v.contains(what)),
            "want {what:?}, got {violations:#?}"
        );
    };
    let ds = by_kind("DaemonSet");
    assert_eq!(apiserver_rules::validate(&ds), Vec::<String>::new());

    // Finding 1: every member in one metadata.name requirement.
    let mut bad = ds.clone();
    bad["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"] = json!([
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b", "c"]}]}
    ]);
    refused(
        &bad,
        "must be only one value when operator is 'In' or 'NotIn'",
    );
    let mut bad = ds.clone();
    bad["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"] =
        json!([{"matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["a"]}]}]);
    refused(&bad, "not a supported node field selector key");
    let mut bad = ds.clone();
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][1]["name"] =
        json!("metrics-endpoint");
    refused(&bad, "not an IANA_SVC_NAME port name");
    let mut bad = ds.clone();
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][1]["name"] = json!("heartbeat");
    refused(&bad, "Duplicate value");
    let mut bad = ds.clone();
    bad["spec"]["template"]["metadata"]["labels"][names::APP_LABEL] = json!("other");
    refused(&bad, "`selector` does not match template `labels`");
    let mut bad = ds.clone();
    bad["spec"]["template"]["spec"]["volumes"][0]["name"] = json!("Tmp");
    refused(&bad, "is not a DNS-1123 label");
    let mut bad = ds.clone();
    bad["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster", "name": "c", "uid": "1", "controller": true},
        {"apiVersion": "failover.dev/v1alpha1", "kind": "FailoverCluster", "name": "d", "uid": "2", "controller": true},
    ]);
    refused(&bad, "only one reference can have Controller set to true");
    let mut moved = ds.clone();
    moved["spec"]["selector"]["matchLabels"]["extra"] = json!("x");
    moved["spec"]["template"]["metadata"]["labels"]["extra"] = json!("x");
    assert_eq!(apiserver_rules::validate(&moved), Vec::<String>::new());
    assert_eq!(
        apiserver_rules::validate_update(&ds, &moved),
        ["spec.selector: field is immutable"]
    );

    let mut bad = by_kind("ConfigMap");
    bad["metadata"]["labels"][names::CLUSTER_LABEL] = json!("c".repeat(64));
    refused(&bad, "label value");
    let mut bad = by_kind("ConfigMap");
    bad["data"]["config/yaml"] = json!("x");
    refused(&bad, "is not a valid ConfigMap/Secret key");
    let mut bad = by_kind("Secret");
    bad["metadata"]["annotations"]["big"] = json!("x".repeat(256 * 1024));
    refused(&bad, "metadata.annotations");
    let mut bad = by_kind("Role");
    bad["rules"][0]["verbs"] = json!([]);
    refused(&bad, "verbs must contain at least one value");
    let mut bad = by_kind("Role");
    bad["rules"][0]["apiGroups"] = json!([]);
    refused(&bad, "resource rules must supply at least one api group");
    let binding = by_kind("RoleBinding");
    let mut bad = binding.clone();
    bad["roleRef"]["name"] = json!("other");
    assert_eq!(
        apiserver_rules::validate_update(&binding, &bad),
        ["roleRef: cannot change roleRef"]
    );
    let mut bad = by_kind("Lease");
    bad["spec"]["leaseDurationSeconds"] = json!(0);
    refused(&bad, "must be greater than 0");
    let event = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": format!("{}.18a1b2c3d4e5f607", "c".repeat(253)), "namespace": NS},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "failover-operator",
        "reportingInstance": "op-0", "action": "ObserveOwner", "reason": "Failover",
        "note": "é".repeat(513), "type": "Normal",
        "regarding": {"kind": "ResourceGroup", "name": "web", "namespace": "other"},
    });
    refused(&event, "metadata.name");
    refused(&event, "note: 1026 bytes");
    refused(&event, "regarding.namespace");

    let schema = apiserver_rules::status_schema("ResourceGroup");
    let violations = apiserver_rules::validate_against_schema(
        &schema,
        &json!({"phase": "Sideways", "epoch": -1}),
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("status.phase: Unsupported value")),
        "{violations:#?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("status.epoch: below the minimum")),
        "{violations:#?}"
    );
    let violations = apiserver_rules::validate_against_schema(&schema, &json!({"ownr": "a"}));
    assert!(
        violations
            .iter()
            .any(|v| v.contains("status.ownr: unknown field")),
        "{violations:#?}"
    );
}

#[test]
fn every_rendered_object_passes_the_api_server_rules_at_the_longest_names() {
    // The longest names the CRDs and the validation allow: 63-character cluster and
    // group names (label values), a node name that makes its Lease name 253 long.
    let long_node = format!("n{}", ".n".repeat(91)); // 183 characters
    let mut c = cluster().member(&long_node);
    c.metadata.name = Some("c".repeat(63));
    assert_eq!(names::node_lease(&c.name_any(), &long_node).len(), 252);
    let mut web = group(&"w".repeat(63), "10.77.0.100/24");
    web.spec.cluster = c.name_any();
    let groups = [web];
    assert_eq!(crate::api::validate_config(&c, &groups), Vec::new());
    for quorum in [QuorumMode::Majority, QuorumMode::Witness, QuorumMode::None] {
        let mut c = c.clone();
        c.spec.quorum = quorum;
        if quorum == QuorumMode::Witness {
            c.spec.members.truncate(2);
        }
        for object in rendered(&c, &groups) {
            assert_eq!(
                apiserver_rules::validate(&object),
                Vec::<String>::new(),
                "{quorum:?} {}",
                object["kind"]
            );
        }
    }
    // And with `failover witness` in place of the witness Lease.
    let mut process = c.clone().witness_process("fd77::9");
    process.spec.members.truncate(2);
    for object in rendered(&process, &groups) {
        assert_eq!(
            apiserver_rules::validate(&object),
            Vec::<String>::new(),
            "witness process {}",
            object["kind"]
        );
    }
    // A spec change (member added, new image) is a valid update of every object.
    let mut next = c.clone().member("b2");
    next.spec.members[0].priority = 7;
    let mut other_image = settings();
    other_image.image = "registry.example/failover:2.0.0".into();
    let before = serde_json::to_value(build::daemon_set(&c, &settings())).unwrap();
    let after = serde_json::to_value(build::daemon_set(&next, &other_image)).unwrap();
    assert_eq!(
        apiserver_rules::validate_update(&before, &after),
        Vec::<String>::new()
    );
    let before = serde_json::to_value(build::role_binding(&c)).unwrap();
    let after = serde_json::to_value(build::role_binding(&next)).unwrap();
    assert_eq!(
        apiserver_rules::validate_update(&before, &after),
        Vec::<String>::new()
    );

    // The statuses, against the CRDs' status schemas.
    let leases = [node_lease(
        "a",
        Duration::from_millis(100),
        "h",
        true,
        &["web"],
    )];
    let reports = Reports::from_leases("c", &leases);
    let status = cluster_status(&c, &[], Some("h".into()), &reports, Timestamp::now());
    assert_eq!(
        apiserver_rules::validate_against_schema(
            &apiserver_rules::status_schema("FailoverCluster"),
            &serde_json::to_value(&status).unwrap()
        ),
        Vec::<String>::new()
    );
    let status = group_status(&groups[0], Some(&c), &[], &reports, Timestamp::now());
    assert_eq!(
        apiserver_rules::validate_against_schema(
            &apiserver_rules::status_schema("ResourceGroup"),
            &serde_json::to_value(&status).unwrap()
        ),
        Vec::<String>::new()
    );
}

/// The conditions rule refuses what `ValidateConditions` refuses, so the status
/// tests that use it can fail; every reason the operator writes passes it.
#[test]
fn the_condition_rules_refuse_a_bad_condition() {
    let good = json!({"type": "ConfigSynchronized", "status": "False",
                      "reason": "ConfigOutvoted", "message": "m",
                      "lastTransitionTime": "2025-06-01T12:00:00Z"});
    assert_eq!(
        apiserver_rules::conditions(&json!([good.clone()])),
        Vec::<String>::new()
    );
    let with = |field: &str, value: Value| {
        let mut bad = good.clone();
        bad[field] = value;
        apiserver_rules::conditions(&json!([bad]))
    };
    assert_eq!(with("reason", json!("Config Outvoted")).len(), 1);
    assert_eq!(with("reason", json!("ConfigOutvoted-")).len(), 1);
    assert_eq!(with("reason", json!("")).len(), 1);
    assert_eq!(with("status", json!("false")).len(), 1);
    assert_eq!(with("message", json!("x".repeat(32 * 1024 + 1))).len(), 1);
    assert_eq!(with("lastTransitionTime", Value::Null).len(), 1);
    assert_eq!(
        apiserver_rules::conditions(&json!([good.clone(), good])),
        vec!["conditions[1].type: Duplicate value"]
    );
    for reason in crate::api::conditions::reason::ALL {
        assert_eq!(
            apiserver_rules::condition_reason(reason),
            Ok(()),
            "{reason}"
        );
    }
}
