//! Tests of the operator: the pure rendering and status functions with plain
//! values, and the reconcilers' IO against a mocked API server that asserts every
//! request (method, path, body) in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeAddress as K8sNodeAddress, NodeStatus, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{ApiResource, DynamicObject, ObjectMeta};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::apiserver_rules;
use super::build::{self, AgentSettings, KEY_LEN, KEY_ROTATION_OVERLAP};
use super::config::{NodeAddress, node_address, resolve_addresses};
use super::metrics::Metrics;
use super::reconcile::{
    Context, Settings, Stores, cluster_resource, group_resource, reconcile_cluster, reconcile_group,
};
use super::status::{Reports, cluster_notices, cluster_status, group_notices, group_status};
use crate::api::{
    FailoverCluster, FailoverClusterSpec, GroupPhase, MemberSpec, MemberState, QuorumMode,
    QuorumState, ResourceGroup, ResourceGroupSpec, ResourceSpec, ResourceState, VirtualIpSpec,
    load_documents,
};
use crate::contract::model::{AgentConfig, config_hash};
use crate::contract::names;
use crate::contract::render::render_config;

// ---------------------------------------------------------------- fixtures

const NS: &str = "ns";

fn member(node: &str) -> MemberSpec {
    MemberSpec {
        node: node.to_owned(),
        priority: 100,
        paused: false,
        address: None,
    }
}

/// A FailoverCluster `c` in `ns` with members a and b.
fn cluster() -> FailoverCluster {
    let spec: FailoverClusterSpec =
        serde_json::from_value(json!({"members": [{"node": "a"}, {"node": "b"}]})).unwrap();
    let mut c = FailoverCluster::new("c", spec);
    c.metadata.namespace = Some(NS.to_owned());
    c.metadata.uid = Some("uid-c".to_owned());
    c.metadata.generation = Some(1);
    c
}

trait ClusterFixture: Sized {
    fn member(self, node: &str) -> Self;
    fn witness(self) -> Self;
    fn dead_after(self, text: &str) -> Self;
    fn hash(self, hash: &str) -> Self;
}

impl ClusterFixture for FailoverCluster {
    fn member(mut self, node: &str) -> Self {
        self.spec.members.push(member(node));
        self
    }
    fn witness(mut self) -> Self {
        self.spec.quorum = QuorumMode::Witness;
        self
    }
    fn dead_after(mut self, text: &str) -> Self {
        self.spec.heartbeat.dead_after = text.to_owned();
        self
    }
    fn hash(mut self, hash: &str) -> Self {
        self.status.get_or_insert_with(Default::default).config_hash = Some(hash.to_owned());
        self
    }
}

/// A ResourceGroup of cluster `c` with one VIP.
fn group(name: &str, vip: &str) -> ResourceGroup {
    let mut g = ResourceGroup::new(
        name,
        ResourceGroupSpec {
            cluster: "c".to_owned(),
            ..serde_json::from_value(json!({"cluster": "c", "resources": []})).unwrap()
        },
    );
    g.spec.resources.push(ResourceSpec {
        name: "vip".to_owned(),
        virtual_ip: Some(VirtualIpSpec {
            address: vip.to_owned(),
            interface: None,
        }),
        workload: None,
        health_check: None,
        depends_on: Vec::new(),
    });
    g.metadata.namespace = Some(NS.to_owned());
    g.metadata.uid = Some(format!("uid-{name}"));
    g.metadata.generation = Some(1);
    g
}

fn node(name: &str, ip: Option<&str>) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        status: Some(NodeStatus {
            addresses: Some(
                ip.map(|ip| K8sNodeAddress {
                    type_: "InternalIP".to_owned(),
                    address: ip.to_owned(),
                })
                .into_iter()
                .collect(),
            ),
            ..NodeStatus::default()
        }),
        ..Node::default()
    }
}

fn ip_of(name: &str) -> NodeAddress {
    match name {
        "a" => NodeAddress::Ip("10.0.0.1".into()),
        "b" => NodeAddress::Ip("10.0.0.2".into()),
        "c" => NodeAddress::Ip("10.0.0.3".into()),
        "bare" => NodeAddress::NoInternalIp,
        _ => NodeAddress::Unknown,
    }
}

fn lease(
    name: &str,
    holder: Option<&str>,
    renewed: Timestamp,
    annotations: &[(&str, &str)],
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NS.to_owned()),
            labels: Some(BTreeMap::from([(
                names::CLUSTER_LABEL.to_owned(),
                "c".to_owned(),
            )])),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: Some(MicroTime(renewed)),
            ..LeaseSpec::default()
        }),
    }
}

/// A node Lease of `node`, renewed `age` ago, reporting `hash` and a view.
fn node_lease(node: &str, age: Duration, hash: &str, quorate: bool, held: &[&str]) -> Lease {
    let view = json!({
        "quorate": quorate,
        "alive": ["a", "b"],
        "held": held.iter().map(|g| (g.to_string(), 1)).collect::<BTreeMap<_, _>>(),
    })
    .to_string();
    let explain = json!({"web": format!("{node} explains")}).to_string();
    lease(
        &names::node_lease("c", node),
        Some(node),
        Timestamp::now() - age,
        &[
            (names::CONFIG_HASH, hash),
            (names::VIEW, &view),
            (names::EXPLAIN, &explain),
        ],
    )
}

fn resolved(c: &FailoverCluster) -> FailoverCluster {
    resolve_addresses(c, ip_of).unwrap()
}

// ---------------------------------------------------------------- pure: config

#[test]
fn config_map_holds_the_documents_the_agent_loads_and_their_hash() {
    let mut c = cluster().member("c");
    c.spec.members[2].address = Some("192.0.2.3".into());
    let groups = [
        group("web", "10.77.0.100/24"),
        group("db", "10.77.0.101/24"),
    ];
    let rendered = render_config(&resolved(&c), &groups).unwrap();
    let (loaded, loaded_groups) = load_documents(&rendered.yaml).unwrap();
    // Addresses: from the Node when unset, the spec's when set.
    let addresses: Vec<_> = loaded
        .spec
        .members
        .iter()
        .map(|m| m.address.clone().unwrap())
        .collect();
    assert_eq!(addresses, ["10.0.0.1", "10.0.0.2", "192.0.2.3"]);
    // Groups sorted by name, spec only.
    let names: Vec<_> = loaded_groups.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["db", "web"]);
    assert!(loaded.status.is_none());
    assert_eq!(loaded.namespace().as_deref(), Some(NS));
    // The hash is what the agent computes from what it loads.
    assert_eq!(
        rendered.hash,
        format!("{:016x}", config_hash(&loaded, &loaded_groups))
    );
    // And the standalone agent accepts the rendered file and computes the same hash.
    let agent = AgentConfig::from_yaml(&rendered.yaml).unwrap();
    assert_eq!(rendered.hash, format!("{:016x}", agent.hash));
    assert_eq!(rendered.hash.len(), 16);
    assert!(
        rendered
            .hash
            .chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase())
    );

    let cm = build::config_map(&c, &rendered);
    assert_eq!(cm.name_any(), "c-config");
    let data = cm.data.unwrap();
    assert_eq!(data["hash"], rendered.hash);
    assert_eq!(data["config.yaml"], rendered.yaml);
    // No group asks to clear failures: no key.
    assert!(!data.contains_key("clear-failures.json"));
}

#[test]
fn clear_failures_annotations_ride_beside_the_config_without_changing_its_hash() {
    let c = resolved(&cluster());
    let plain = [
        group("web", "10.77.0.100/24"),
        group("db", "10.77.0.101/24"),
    ];
    let mut annotated = plain.clone();
    annotated[0]
        .annotations_mut()
        .insert("failover.dev/clear-failures".into(), "2026-11-22".into());
    let before = render_config(&c, &plain).unwrap();
    let after = render_config(&c, &annotated).unwrap();
    assert_eq!(before.hash, after.hash);
    assert_eq!(before.yaml, after.yaml);
    assert_eq!(
        after.clear_failures,
        BTreeMap::from([("web".to_owned(), "2026-11-22".to_owned())])
    );
    let data = build::config_map(&c, &after).data.unwrap();
    let values: BTreeMap<String, String> =
        serde_json::from_str(&data["clear-failures.json"]).unwrap();
    assert_eq!(values, after.clear_failures);
    // What the agent reads back.
    let (_, read) =
        crate::contract::source::parse_config_map(&build::config_map(&c, &after)).unwrap();
    assert_eq!(read, after.clear_failures);
}

#[test]
fn the_hash_follows_the_spec_not_the_order_or_the_status() {
    let c = resolved(&cluster());
    let (web, db) = (
        group("web", "10.77.0.100/24"),
        group("db", "10.77.0.101/24"),
    );
    let one = render_config(&c, &[web.clone(), db.clone()]).unwrap();
    let mut with_status = c.clone();
    with_status.status = Some(Default::default());
    with_status.metadata.generation = Some(7);
    assert_eq!(
        one,
        render_config(&with_status, &[db.clone(), web.clone()]).unwrap()
    );
    let mut changed = c.clone();
    changed.spec.heartbeat.port = 7800;
    assert_ne!(one.hash, render_config(&changed, &[web, db]).unwrap().hash);
}

#[test]
fn members_without_an_address_or_a_known_node_are_problems_naming_the_field() {
    let c = cluster().member("ghost").member("bare");
    let problems = resolve_addresses(&c, ip_of).unwrap_err();
    let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["spec.members[2].node", "spec.members[3].node"]);
    assert!(
        problems[0].message.contains("does not exist"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].message.contains("no InternalIP"),
        "{}",
        problems[1]
    );
    assert_eq!(node_address(None), NodeAddress::Unknown);
    assert_eq!(
        node_address(Some(&node("x", None))),
        NodeAddress::NoInternalIp
    );
    assert_eq!(
        node_address(Some(&node("x", Some("fd00::1")))),
        NodeAddress::Ip("fd00::1".into())
    );
}

// ---------------------------------------------------------------- pure: Secret

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

// ---------------------------------------------------------------- pure: DaemonSet, RBAC, Leases

fn settings() -> AgentSettings {
    AgentSettings {
        image: "registry.example/failover:1.2.3".into(),
        pull_policy: "Always".into(),
        resources: None,
        realtime_priority: 50,
    }
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

    let binding = build::role_binding(&c);
    assert_eq!(binding.role_ref.name, "c-agent");
    assert_eq!(binding.subjects.unwrap()[0].namespace.as_deref(), Some(NS));
    assert_eq!(build::service_account(&c).owner_references().len(), 1);
}

#[test]
fn leases_are_created_empty_one_per_group_and_the_witness_only_in_witness_mode() {
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
}

// ---------------------------------------------------------------- pure: status

#[test]
fn member_states_sync_and_quorum_come_from_the_node_leases() {
    let mut c = cluster().member("c").member("d");
    c.spec.members[3].paused = true;
    let leases = [
        node_lease("a", Duration::from_millis(300), "h1", true, &["web"]),
        node_lease("b", Duration::from_secs(30), "h0", false, &[]),
        node_lease("d", Duration::from_millis(100), "h1", true, &[]),
    ];
    let reports = Reports::from_leases("c", &leases);
    let status = cluster_status(&c, &[], Some("h1".into()), &reports, Timestamp::now());
    let states: Vec<_> = status
        .members
        .iter()
        .map(|m| (m.node.as_str(), m.state, m.synchronized))
        .collect();
    assert_eq!(
        states,
        [
            ("a", MemberState::Online, true),
            ("b", MemberState::Offline, false),
            ("c", MemberState::Unknown, false),
            ("d", MemberState::Paused, true),
        ]
    );
    assert_eq!(status.members[1].applied_config_hash.as_deref(), Some("h0"));
    assert_eq!(status.online_count, Some(1));
    assert_eq!(status.synced_count, Some(2));
    let quorum = status.quorum.clone().unwrap();
    assert_eq!((quorum.state, quorum.voters), (QuorumState::Quorate, 4));
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .find(|x| x.type_ == t)
            .unwrap()
            .clone()
    };
    assert_eq!(condition("Ready").status, "True");
    assert_eq!(condition("Degraded").status, "True");
    assert_eq!(condition("Degraded").reason, "MemberOffline");
    assert_eq!(condition("QuorumLost").status, "False");
    assert_eq!(condition("ConfigValid").status, "True");
    assert_eq!(status.observed_generation, Some(1));

    // Everyone silent: quorum lost, and the transitions become Events.
    let later = Timestamp::now() + Duration::from_secs(60);
    let mut c2 = c.clone();
    c2.status = Some(status.clone());
    let lost = cluster_status(&c2, &[], Some("h1".into()), &reports, later);
    assert_eq!(lost.quorum.clone().unwrap().state, QuorumState::Lost);
    // lastTransitionTime moves only with the status.
    let valid_before = condition("ConfigValid");
    let valid_after = lost
        .conditions
        .iter()
        .find(|x| x.type_ == "ConfigValid")
        .unwrap();
    assert_eq!(
        valid_before.last_transition_time,
        valid_after.last_transition_time
    );
    let reasons: Vec<_> = cluster_notices(&status, &lost)
        .iter()
        .map(|n| n.reason)
        .collect();
    // a (online) and d (paused) both stopped reporting.
    assert_eq!(reasons, ["MemberDown", "MemberDown", "QuorumLost"]);
    let back: Vec<_> = cluster_notices(&lost, &status)
        .iter()
        .map(|n| n.reason)
        .collect();
    assert_eq!(back, ["MemberUp", "QuorumRegained"]);
}

#[test]
fn invalid_config_keeps_the_last_hash_and_is_announced_once() {
    let c = cluster().hash("h1");
    let problems = resolve_addresses(&c.clone().member("ghost"), ip_of).unwrap_err();
    let status = cluster_status(
        &c,
        &problems,
        Some("h1".into()),
        &Reports::default(),
        Timestamp::now(),
    );
    let valid = status
        .conditions
        .iter()
        .find(|x| x.type_ == "ConfigValid")
        .unwrap();
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        valid.message.contains("spec.members[2].node"),
        "{}",
        valid.message
    );
    assert_eq!(status.config_hash.as_deref(), Some("h1"));
    let before = c.status.clone().unwrap();
    let notices = cluster_notices(&before, &status);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].reason, "ConfigRejected");
    assert!(cluster_notices(&status, &status).is_empty());
}

#[test]
fn group_status_reads_the_ledger_and_explains_every_member() {
    let c = cluster();
    let mut g = group("web", "10.77.0.100/24");
    let t = Timestamp::now() - Duration::from_secs(5);
    let mut ledger = lease(
        &names::group_lease("c", "web"),
        Some("a"),
        t,
        &[
            (names::REASON, "OwnerFailed"),
            (names::MESSAGE, "b was confirmed dead"),
        ],
    );
    ledger.spec.as_mut().unwrap().lease_transitions = Some(4);
    let leases = [
        ledger,
        node_lease("a", Duration::from_millis(100), "h", true, &["web"]),
    ];
    let reports = Reports::from_leases("c", &leases);
    let status = group_status(&g, Some(&c), &[], &reports, Timestamp::now());
    assert_eq!(status.owner.as_deref(), Some("a"));
    assert_eq!(status.epoch, Some(4));
    assert_eq!(status.phase, Some(GroupPhase::Online));
    let transition = status.last_transition.clone().unwrap();
    assert_eq!(transition.reason, "OwnerFailed");
    assert_eq!(transition.message, "b was confirmed dead");
    assert_eq!(transition.time, Time(t));
    assert_eq!(status.members[0].reason, "a explains");
    assert!(status.members[0].eligible);
    assert_eq!(status.members[1].reason, "no report from its agent yet");
    assert!(!status.members[1].eligible);

    g.status = Some(crate::api::ResourceGroupStatus {
        owner: Some("b".into()),
        ..Default::default()
    });
    let notices = group_notices(g.status.as_ref().unwrap(), &status);
    assert_eq!(notices.len(), 1);
    assert_eq!((notices[0].reason, notices[0].warning), ("Failover", true));
    assert!(
        notices[0].note.starts_with("b -> a (epoch 4)"),
        "{}",
        notices[0].note
    );

    let missing = group_status(&g, None, &[], &Reports::default(), Timestamp::now());
    let valid = missing
        .conditions
        .iter()
        .find(|x| x.type_ == "ConfigValid")
        .unwrap();
    assert_eq!(valid.reason, "ClusterNotFound");
}

// ---------------------------------------------------------------- mocked API server

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Plays the API server: each expectation checks one request and answers it.
/// Every object written is first checked against the API server's validation rules
/// (`apiserver_rules`), so a request a real API server would refuse fails the test.
struct ApiServerVerifier(Handle);

/// Fails unless a real API server would accept this write.
fn assert_accepted(method: &Method, path: &str, body: &Value) {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) || body.is_null() {
        return;
    }
    let violations = if path.ends_with("/status") {
        let kind = body["kind"].as_str().unwrap_or_default();
        apiserver_rules::validate_against_schema(
            &apiserver_rules::status_schema(kind),
            &body["status"],
        )
    } else {
        apiserver_rules::validate(body)
    };
    assert!(
        violations.is_empty(),
        "{method} {path}: the API server would refuse it: {violations:#?}\n{body:#}"
    );
}

/// What the verifier saw.
struct Seen {
    method: Method,
    query: String,
    body: Value,
}

impl ApiServerVerifier {
    /// Takes the next request, checks method and path, answers with `answer(body)`.
    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        answer: impl FnOnce(&Value) -> (StatusCode, Value),
    ) -> Seen {
        let (request, send) = tokio::time::timeout(Duration::from_secs(10), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        let seen_method = request.method().clone();
        let seen_path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        assert_eq!(
            (&seen_method, seen_path.as_str()),
            (&method, path),
            "unexpected request, body {body}"
        );
        assert_accepted(&seen_method, &seen_path, &body);
        let (status, answer) = answer(&body);
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap(),
        );
        Seen {
            method: seen_method,
            query,
            body,
        }
    }

    /// An apply of `kind` at `path`, echoed back; returns the applied object.
    async fn apply(&mut self, path: &str) -> Value {
        let seen = self
            .expect(Method::PATCH, path, |body| (StatusCode::OK, body.clone()))
            .await;
        assert!(
            seen.query.contains("fieldManager=failover-operator"),
            "{}",
            seen.query
        );
        assert!(seen.query.contains("force=true"), "{}", seen.query);
        seen.body
    }

    async fn not_found(&mut self, path: &str) {
        self.expect(Method::GET, path, |_| {
            (
                StatusCode::NOT_FOUND,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "not found", "reason": "NotFound", "code": 404}),
            )
        })
        .await;
    }

    async fn leases(&mut self, items: Vec<Lease>) {
        let seen = self
            .expect(Method::GET, "/apis/coordination.k8s.io/v1/namespaces/ns/leases", move |_| {
                (StatusCode::OK, json!({"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList", "metadata": {}, "items": items}))
            })
            .await;
        assert!(
            seen.query
                .contains("labelSelector=failover.dev%2Fcluster%3Dc"),
            "{}",
            seen.query
        );
    }

    /// The applies of every owned object of a valid cluster; returns them by kind.
    async fn owned_objects(&mut self) -> BTreeMap<&'static str, Value> {
        let mut applied = BTreeMap::new();
        for (kind, path) in [
            ("ConfigMap", "/api/v1/namespaces/ns/configmaps/c-config"),
            ("Secret", "/api/v1/namespaces/ns/secrets/c-heartbeat"),
            (
                "ServiceAccount",
                "/api/v1/namespaces/ns/serviceaccounts/c-agent",
            ),
            (
                "Role",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/c-agent",
            ),
            (
                "RoleBinding",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/rolebindings/c-agent",
            ),
            (
                "DaemonSet",
                "/apis/apps/v1/namespaces/ns/daemonsets/c-agent",
            ),
        ] {
            let body = self.apply(path).await;
            assert_eq!(body["kind"], kind);
            assert_eq!(
                body["metadata"]["ownerReferences"][0]["uid"], "uid-c",
                "{kind}"
            );
            applied.insert(kind, body);
        }
        applied
    }

    /// The applies of the node Leases of `nodes`: metadata only, never a spec field.
    async fn node_leases(&mut self, nodes: &[&str]) {
        for node in nodes {
            let body = self
                .apply(&format!(
                    "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-node-{node}"
                ))
                .await;
            assert_eq!(body["metadata"]["labels"][names::CLUSTER_LABEL], "c");
            assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-c");
            assert!(body.get("spec").is_none(), "{body}");
        }
    }

    /// A GET of the ResourceGroup `name`, answered 404.
    async fn group_not_found(&mut self, name: &str) {
        self.not_found(&format!(
            "/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/{name}"
        ))
        .await;
    }

    async fn status(&mut self, path: &str) -> Value {
        let seen = self
            .expect(Method::PATCH, path, |body| (StatusCode::OK, body.clone()))
            .await;
        assert!(
            seen.query.contains("fieldManager=failover-operator"),
            "{}",
            seen.query
        );
        assert_eq!(seen.body["apiVersion"], "failover.dev/v1alpha1");
        seen.body["status"].clone()
    }

    async fn event(&mut self) -> Value {
        let seen = self
            .expect(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/ns/events",
                |body| (StatusCode::CREATED, body.clone()),
            )
            .await;
        assert_eq!(seen.method, Method::POST);
        seen.body
    }
}

fn dynamic<K: Resource<DynamicType = ()> + serde::Serialize>(
    object: &K,
    resource: &ApiResource,
) -> DynamicObject {
    let mut value = serde_json::to_value(object).unwrap();
    value["apiVersion"] = json!(resource.api_version);
    value["kind"] = json!(resource.kind);
    serde_json::from_value(value).unwrap()
}

/// A context on a mocked client with stores holding the given objects.
fn context(
    clusters: &[FailoverCluster],
    groups: &[Value],
    nodes: &[Node],
) -> (Arc<Context>, ApiServerVerifier) {
    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(mock, NS);
    let (stores, writers) = stores(clusters, groups, nodes);
    // The writers must outlive the test for the readers to stay valid.
    std::mem::forget(writers);
    context_with(client, stores, handle)
}

/// The writers behind [`Stores`]: a test holding them plays the reflectors.
struct Writers {
    clusters: Writer<DynamicObject>,
    groups: Writer<DynamicObject>,
    nodes: Writer<Node>,
}

/// A complete list into `writer`, as a watcher's initial list delivers it (the
/// store is ready afterwards).
fn listed<K>(writer: &mut Writer<K>, objects: impl IntoIterator<Item = K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

/// Stores listed with the given objects.
fn stores(clusters: &[FailoverCluster], groups: &[Value], nodes: &[Node]) -> (Stores, Writers) {
    let (stores, mut writers) = unlisted_stores();
    listed(
        &mut writers.clusters,
        clusters.iter().map(|c| dynamic(c, &cluster_resource())),
    );
    listed(
        &mut writers.groups,
        groups
            .iter()
            .map(|g| serde_json::from_value::<DynamicObject>(g.clone()).unwrap()),
    );
    listed(&mut writers.nodes, nodes.iter().cloned());
    (stores, writers)
}

/// Stores whose reflectors have not listed anything yet (an operator starting).
fn unlisted_stores() -> (Stores, Writers) {
    let writers = Writers {
        clusters: Writer::new(cluster_resource()),
        groups: Writer::new(group_resource()),
        nodes: Writer::default(),
    };
    let stores = Stores {
        clusters: writers.clusters.as_reader(),
        groups: writers.groups.as_reader(),
        nodes: writers.nodes.as_reader(),
    };
    (stores, writers)
}

/// A context on the mocked `client` over `stores`.
fn context_with(
    client: Client,
    stores: Stores,
    handle: Handle,
) -> (Arc<Context>, ApiServerVerifier) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "failover-operator".into(),
            instance: None,
        },
    );
    let settings = Settings {
        agent: settings(),
        api_timeout: Duration::from_secs(5),
        resync: Duration::from_secs(5),
    };
    (
        Arc::new(Context::new(
            client,
            recorder,
            Arc::new(Metrics::default()),
            settings,
            stores,
        )),
        ApiServerVerifier(handle),
    )
}

fn group_json(g: &ResourceGroup) -> Value {
    serde_json::to_value(dynamic(g, &group_resource())).unwrap()
}

fn nodes() -> Vec<Node> {
    vec![
        node("a", Some("10.0.0.1")),
        node("b", Some("10.0.0.2")),
        node("c", Some("10.0.0.3")),
    ]
}

const CLUSTER_STATUS: &str = "/apis/failover.dev/v1alpha1/namespaces/ns/failoverclusters/c/status";

async fn run_cluster<F: std::future::Future<Output = ()> + Send + 'static>(
    ctx: Arc<Context>,
    c: &FailoverCluster,
    server: F,
) -> Action {
    let server = tokio::spawn(server);
    let action = reconcile_cluster(Arc::new(dynamic(c, &cluster_resource())), ctx)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    action
}

#[tokio::test]
async fn create_applies_every_object_then_status() {
    let c = cluster();
    let web = group("web", "10.77.0.100/24");
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let action = run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        let applied = api.owned_objects().await;
        let cm = &applied["ConfigMap"];
        let hash = cm["data"]["hash"].as_str().unwrap().to_owned();
        let (loaded, groups) = load_documents(cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(loaded.spec.members[0].address.as_deref(), Some("10.0.0.1"));
        assert_eq!(groups.len(), 1);
        let key = applied["Secret"]["data"]["key"].as_str().unwrap();
        assert_eq!(key.len(), 44, "32 bytes in base64: {key}");
        assert_eq!(
            applied["DaemonSet"]["spec"]["template"]["spec"]["hostNetwork"],
            true
        );
        let lease = api
            .expect(
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
                |b| (StatusCode::CREATED, b.clone()),
            )
            .await
            .body;
        assert_eq!(lease["metadata"]["name"], "c-group-web");
        assert!(lease["spec"].get("holderIdentity").is_none());
        api.node_leases(&["a", "b"]).await;
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(status["configHash"], hash.as_str());
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["members"][0]["state"], "Unknown");
        let valid = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ConfigValid")
            .unwrap()
            .clone();
        assert_eq!(valid["status"], "True");
    })
    .await;
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
}

#[tokio::test]
async fn a_spec_change_renders_a_new_hash_and_keeps_the_key() {
    let old = resolved(&cluster());
    let web = group("web", "10.77.0.100/24");
    let old_hash = render_config(&old, std::slice::from_ref(&web))
        .unwrap()
        .hash;
    let c = cluster().member("c").hash(&old_hash);
    let existing = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let mut ledger = build::leases(&c, std::slice::from_ref(&web));
    ledger.push(node_lease(
        "a",
        Duration::from_millis(200),
        &old_hash,
        true,
        &["web"],
    ));
    run_cluster(ctx, &c, async move {
        api.expect(Method::GET, "/api/v1/namespaces/ns/secrets/c-heartbeat", move |_| (StatusCode::OK, serde_json::to_value(&existing).unwrap()))
            .await;
        api.leases(ledger).await;
        let applied = api.owned_objects().await;
        let hash = applied["ConfigMap"]["data"]["hash"].as_str().unwrap().to_owned();
        assert_ne!(hash, old_hash);
        assert_eq!(applied["Secret"]["data"]["key"], json!(k8s_openapi::ByteString(vec![9; KEY_LEN])));
        let terms = &applied["DaemonSet"]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
        assert_eq!(terms, &json!(["a", "b", "c"].map(|n| json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n]}]}))));
        // The group Lease exists: no create. a's node Lease (written by its agent)
        // gets the operator's labels and owner reference, b's and c's are created.
        // Status follows the new hash; a still runs the old one.
        api.node_leases(&["a", "b", "c"]).await;
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(status["configHash"], hash.as_str());
        assert_eq!(status["members"][0]["appliedConfigHash"], old_hash.as_str());
        assert_eq!(status["members"][0]["synchronized"], false);
        assert_eq!(status["members"][0]["state"], "Online");
    })
    .await;
}

#[tokio::test]
async fn an_invalid_spec_sets_config_valid_false_and_touches_no_object() {
    let c = cluster().member("ghost").hash("0123456789abcdef");
    let web = group("web", "10.77.0.100/24");
    let dup = group("dup", "10.77.0.100/24");
    let (ctx, mut api) = context(
        std::slice::from_ref(&c),
        &[group_json(&web), group_json(&dup)],
        &nodes(),
    );
    run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        // Straight to status: no ConfigMap, Secret, DaemonSet, RBAC or Lease write.
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(
            status["configHash"], "0123456789abcdef",
            "the last valid config keeps running"
        );
        let valid = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ConfigValid")
            .unwrap()
            .clone();
        assert_eq!(valid["status"], "False");
        assert_eq!(valid["reason"], "InvalidSpec");
        let message = valid["message"].as_str().unwrap();
        assert!(message.contains("spec.members[2].node"), "{message}");
        assert!(
            message.contains("spec.resources[0].virtualIP.address"),
            "{message}"
        );
        let event = api.event().await;
        assert_eq!(event["reason"], "ConfigRejected");
        assert_eq!(event["type"], "Warning");
    })
    .await;
}

#[tokio::test]
async fn a_malformed_group_is_reported_on_itself_and_blocks_only_its_cluster_config() {
    let c = cluster();
    let mut bad = group_json(&group("bad", "10.77.0.100/24"));
    bad["spec"]["resources"] = json!("not a list");
    let (ctx, mut api) = context(
        std::slice::from_ref(&c),
        std::slice::from_ref(&bad),
        &nodes(),
    );
    let obj: DynamicObject = serde_json::from_value(bad).unwrap();
    let server = tokio::spawn(async move {
        let status = api
            .status("/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/bad/status")
            .await;
        assert_eq!(status["conditions"][0]["status"], "False");
        assert!(
            status["conditions"][0]["message"]
                .as_str()
                .unwrap()
                .contains("cannot be read")
        );
        assert_eq!(api.event().await["reason"], "ConfigRejected");
        api
    });
    let action = reconcile_group(Arc::new(obj), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    let mut api = server.await.unwrap();
    run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        let status = api.status(CLUSTER_STATUS).await;
        let valid = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ConfigValid")
            .unwrap()
            .clone();
        assert!(
            valid["message"]
                .as_str()
                .unwrap()
                .contains("ResourceGroup/ns/bad"),
            "{valid}"
        );
        api.event().await;
    })
    .await;
}

#[tokio::test]
async fn deletion_leaves_cleanup_to_garbage_collection_and_removes_ledgers_of_deleted_groups() {
    // A cluster being deleted: nothing is written (owner references do the rest).
    let mut deleted = cluster();
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    let (ctx, api) = context(std::slice::from_ref(&deleted), &[], &nodes());
    let action = reconcile_cluster(
        Arc::new(dynamic(&deleted, &cluster_resource())),
        ctx.clone(),
    )
    .await
    .unwrap();
    assert_eq!(action, Action::await_change());
    drop(ctx);
    let mut handle = api.0;
    assert!(
        handle.next_request().await.is_none(),
        "no request for a cluster being deleted"
    );

    // A group deleted: its ledger goes, the others stay.
    let c = cluster();
    let web = group("web", "10.77.0.100/24");
    let mut leases = build::leases(&c, &[web.clone(), group("old", "10.77.0.101/24")]);
    leases.push(node_lease("a", Duration::from_millis(100), "x", true, &[]));
    let existing = build::heartbeat_secret(&c, None, Timestamp::now(), [7; KEY_LEN]).secret;
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    run_cluster(ctx, &c, async move {
        api.expect(Method::GET, "/api/v1/namespaces/ns/secrets/c-heartbeat", move |_| (StatusCode::OK, serde_json::to_value(&existing).unwrap()))
            .await;
        api.leases(leases).await;
        // Not in the store: the API server is asked before its ledger goes.
        api.group_not_found("old").await;
        let applied = api.owned_objects().await;
        let role = applied["Role"].to_string();
        assert!(!role.contains("c-group-old"), "{role}");
        api.expect(Method::DELETE, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-group-old", |_| {
            (StatusCode::OK, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
        })
        .await;
        api.node_leases(&["a", "b"]).await;
        api.status(CLUSTER_STATUS).await;
    })
    .await;
}

#[tokio::test]
async fn group_status_and_failover_event_from_the_ledger() {
    let c = cluster();
    let mut web = group("web", "10.77.0.100/24");
    web.status = Some(crate::api::ResourceGroupStatus {
        owner: Some("b".into()),
        epoch: Some(1),
        ..Default::default()
    });
    let mut ledger = lease(
        &names::group_lease("c", "web"),
        Some("a"),
        Timestamp::now(),
        &[(names::REASON, "OwnerFailed"), (names::MESSAGE, "b died")],
    );
    ledger.spec.as_mut().unwrap().lease_transitions = Some(2);
    let leases = vec![
        ledger,
        node_lease("a", Duration::from_millis(100), "x", true, &["web"]),
    ];
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let server = tokio::spawn(async move {
        api.leases(leases).await;
        let status = api
            .status("/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/web/status")
            .await;
        assert_eq!(status["owner"], "a");
        assert_eq!(status["epoch"], 2);
        assert_eq!(status["phase"], "Online");
        assert_eq!(status["lastTransition"]["reason"], "OwnerFailed");
        let event = api.event().await;
        assert_eq!(event["reason"], "Failover");
        assert_eq!(event["note"], "b -> a (epoch 2): b died");
    });
    reconcile_group(Arc::new(dynamic(&web, &group_resource())), ctx)
        .await
        .unwrap();
    server.await.unwrap();
}

#[test]
fn status_does_not_change_with_every_lease_renewal() {
    let c = cluster();
    let now = Timestamp::now();
    let reports = |age: Duration| {
        Reports::from_leases(
            "c",
            &[
                node_lease("a", age, "h", true, &[]),
                node_lease("b", age, "h", true, &[]),
            ],
        )
    };
    let first = cluster_status(&c, &[], Some("h".into()), &reports(Duration::ZERO), now);
    let mut c2 = c.clone();
    c2.status = Some(first.clone());
    // Renewed 10 s later: same state, heartbeat within the step, same status.
    let later = now + Duration::from_secs(10);
    let renewed = Reports::from_leases(
        "c",
        &[
            node_lease("a", Duration::ZERO, "h", true, &[]),
            node_lease("b", Duration::ZERO, "h", true, &[]),
        ],
    );
    let mut renewed_later = renewed.clone();
    for r in renewed_later.nodes.values_mut() {
        r.renewed = Some(later);
    }
    assert_eq!(
        cluster_status(&c2, &[], Some("h".into()), &renewed_later, later),
        first
    );
    // 40 s later the heartbeat moves.
    let much_later = now + Duration::from_secs(40);
    for r in renewed_later.nodes.values_mut() {
        r.renewed = Some(much_later);
    }
    let moved = cluster_status(&c2, &[], Some("h".into()), &renewed_later, much_later);
    assert_eq!(moved.members[0].last_heartbeat, Some(Time(much_later)));
}

// ---------------------------------------------------------------- leader election, metrics

const LEADER: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/failover-operator-leader";

fn elector() -> (super::leader::Elector, ApiServerVerifier) {
    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(mock, NS);
    let elector = super::leader::Elector::new(
        kube::Api::namespaced(client, NS),
        "me".into(),
        Duration::from_secs(15),
        Duration::from_secs(5),
    );
    (elector, ApiServerVerifier(handle))
}

#[tokio::test]
async fn leader_lease_is_created_then_released_by_compare_and_swap() {
    let (elector, mut api) = elector();
    let server = tokio::spawn(async move {
        api.not_found(LEADER).await;
        let created = api
            .expect(
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
                |b| (StatusCode::CREATED, b.clone()),
            )
            .await
            .body;
        assert_eq!(created["metadata"]["name"], "failover-operator-leader");
        assert_eq!(created["spec"]["holderIdentity"], "me");
        assert_eq!(created["spec"]["leaseDurationSeconds"], 15);
        let mut held = created.clone();
        held["metadata"]["resourceVersion"] = json!("5");
        api.expect(Method::GET, LEADER, move |_| (StatusCode::OK, held))
            .await;
        let released = api
            .expect(Method::PUT, LEADER, |b| (StatusCode::OK, b.clone()))
            .await
            .body;
        assert_eq!(
            released["metadata"]["resourceVersion"], "5",
            "a compare-and-swap"
        );
        assert!(released["spec"].get("holderIdentity").is_none());
    });
    elector.acquire().await;
    elector.release().await;
    server.await.unwrap();
}

#[tokio::test]
async fn an_expired_leader_lease_is_taken_over_with_a_new_transition() {
    let (elector, mut api) = elector();
    let stale = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "failover-operator-leader", "namespace": NS, "resourceVersion": "9"},
        "spec": {"holderIdentity": "other", "leaseDurationSeconds": 15, "leaseTransitions": 3,
                 "renewTime": (Timestamp::now() - Duration::from_secs(60)).to_string()},
    });
    let server = tokio::spawn(async move {
        api.expect(Method::GET, LEADER, move |_| (StatusCode::OK, stale))
            .await;
        let taken = api
            .expect(Method::PUT, LEADER, |b| (StatusCode::OK, b.clone()))
            .await
            .body;
        assert_eq!(taken["spec"]["holderIdentity"], "me");
        assert_eq!(taken["spec"]["leaseTransitions"], 4);
        assert_eq!(taken["metadata"]["resourceVersion"], "9");
    });
    elector.acquire().await;
    server.await.unwrap();
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

#[test]
fn metrics_and_health_endpoints() {
    let metrics = Metrics::default();
    metrics.reconciled("failovercluster", Duration::from_millis(3));
    metrics.failed("failovercluster", "timeout");
    metrics.managed("FailoverCluster", 4);
    let get = |path: &str| {
        crate::telemetry::http::respond(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes(), &metrics)
            .0
    };
    let scraped = get("/metrics");
    assert_eq!(scraped.status, 200);
    let body = scraped.body;
    assert!(
        body.contains("failover_operator_reconciles_total{controller=\"failovercluster\"} 1"),
        "{body}"
    );
    assert!(body.contains("failover_operator_reconcile_errors_total{controller=\"failovercluster\",kind=\"timeout\"} 1"), "{body}");
    assert!(
        body.contains(
            "failover_operator_reconcile_duration_seconds_count{controller=\"failovercluster\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("failover_operator_managed_objects{kind=\"FailoverCluster\"} 4"),
        "{body}"
    );
    metrics.object_states(
        [("ns".to_owned(), "edge".to_owned(), false)],
        [("ns".to_owned(), "web".to_owned(), true)],
    );
    let body = get("/metrics").body;
    assert!(
        body.contains(
            "failover_operator_cluster_config_valid{namespace=\"ns\",cluster=\"edge\"} 0"
        ),
        "{body}"
    );
    assert!(
        body.contains("failover_operator_group_failed{namespace=\"ns\",group=\"web\"} 1"),
        "{body}"
    );
    // A deleted object's series goes away with it.
    metrics.object_states([], []);
    assert!(!get("/metrics").body.contains("group=\"web\""));
    assert_eq!(get("/healthz").status, 200);
    assert_eq!(get("/readyz").status, 503);
    metrics.set_ready(true);
    assert_eq!(get("/readyz").status, 200);
    assert_eq!(get("/other").status, 404);
}

#[tokio::test]
async fn a_heartbeat_port_shared_with_an_earlier_cluster_on_the_same_node_is_rejected() {
    let mut first = FailoverCluster::new("first", cluster().spec);
    first.metadata.namespace = Some("other".into());
    first.metadata.uid = Some("uid-first".into());
    first.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let mut c = cluster();
    c.metadata.creation_timestamp = Some(Time("2026-01-02T00:00:00Z".parse().unwrap()));
    // Another port on the same nodes is fine: only `first` shares port and nodes.
    let mut elsewhere = FailoverCluster::new("elsewhere", cluster().spec);
    elsewhere.metadata.namespace = Some(NS.into());
    elsewhere.spec.heartbeat.port = 7800;
    let (ctx, mut api) = context(&[first, c.clone(), elsewhere], &[], &nodes());
    run_cluster(ctx, &c, async move {
        api.not_found("/api/v1/namespaces/ns/secrets/c-heartbeat")
            .await;
        api.leases(vec![]).await;
        let status = api.status(CLUSTER_STATUS).await;
        let valid = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "ConfigValid")
            .unwrap()
            .clone();
        assert_eq!(valid["reason"], "HeartbeatPortConflict");
        let message = valid["message"].as_str().unwrap();
        assert!(message.contains("FailoverCluster/other/first"), "{message}");
        assert!(!message.contains("elsewhere"), "{message}");
        api.event().await;
    })
    .await;
}

// ---------------------------------------------------------------- the API server's rules

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

#[test]
fn event_notes_are_cut_to_the_api_servers_byte_limit() {
    use super::status::{EVENT_NOTE_MAX_BYTES, truncate};
    let long = "é".repeat(1000); // 2000 bytes
    let cut = truncate(&long, EVENT_NOTE_MAX_BYTES);
    assert!(cut.len() <= EVENT_NOTE_MAX_BYTES, "{}", cut.len());
    assert!(cut.ends_with('…'));
    assert_eq!(truncate("short", EVENT_NOTE_MAX_BYTES), "short");
}

// ---------------------------------------------------------------- operator restart

/// A group Lease as the agents leave it: held by `holder` at `epoch`.
fn held_ledger(c: &FailoverCluster, group: &ResourceGroup, holder: &str, epoch: i32) -> Lease {
    let mut lease = build::leases(c, std::slice::from_ref(group)).remove(0);
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some(holder.to_owned());
    spec.lease_transitions = Some(epoch);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    spec.acquire_time = Some(MicroTime(Timestamp::now()));
    lease.metadata.annotations = Some(BTreeMap::from([(
        names::REASON.to_owned(),
        "Placed".to_owned(),
    )]));
    lease
}

/// A node Lease as the operator rendered it and its agent renews it.
fn adopted_node_lease(c: &FailoverCluster, node: &str, hash: &str, held: &[(&str, u64)]) -> Lease {
    let mut lease = build::node_leases(c)
        .into_iter()
        .find(|l| l.name_any() == names::node_lease("c", node))
        .unwrap();
    let view = json!({"quorate": true, "alive": ["a", "b"], "held": held.iter().map(|(g, e)| (g.to_string(), *e)).collect::<BTreeMap<_, _>>()});
    lease.metadata.annotations = Some(BTreeMap::from([
        (names::CONFIG_HASH.to_owned(), hash.to_owned()),
        (names::VIEW.to_owned(), view.to_string()),
    ]));
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(node.to_owned()),
        renew_time: Some(MicroTime(Timestamp::now())),
        ..LeaseSpec::default()
    });
    lease
}

/// Issue 9, finding 2: a restarted operator (new leader) must not reconcile before
/// its caches are listed, and then must neither delete a group Lease, nor render a
/// ClusterConfig without a group, nor write the holder or epoch of a Lease.
#[tokio::test]
async fn a_restarted_operator_waits_for_its_caches_and_keeps_every_ledger() {
    let web = group("web", "10.77.0.100/24");
    let db = group("db", "10.77.0.101/24");
    let groups = [db.clone(), web.clone()];
    let hash = render_config(&resolved(&cluster()), &groups).unwrap().hash;
    let c = cluster().hash(&hash);
    let secret = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let existing = vec![
        held_ledger(&c, &web, "a", 5),
        held_ledger(&c, &db, "b", 3),
        adopted_node_lease(&c, "a", &hash, &[("web", 5)]),
        adopted_node_lease(&c, "b", &hash, &[("db", 3)]),
    ];

    let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (stores, mut writers) = unlisted_stores();
    let (ctx, mut api) = context_with(Client::new(mock, NS), stores, handle);
    let reconcile = tokio::spawn(reconcile_cluster(
        Arc::new(dynamic(&c, &cluster_resource())),
        ctx.clone(),
    ));
    // Nothing is read or written while the caches are not listed.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), api.0.next_request())
            .await
            .is_err(),
        "a request before the caches were listed"
    );
    listed(&mut writers.clusters, [dynamic(&c, &cluster_resource())]);
    listed(
        &mut writers.groups,
        groups.iter().map(|g| dynamic(g, &group_resource())),
    );
    listed(&mut writers.nodes, nodes());

    let leases = existing.clone();
    let server = tokio::spawn(async move {
        api.expect(
            Method::GET,
            "/api/v1/namespaces/ns/secrets/c-heartbeat",
            move |_| (StatusCode::OK, serde_json::to_value(&secret).unwrap()),
        )
        .await;
        api.leases(leases).await;
        let applied = api.owned_objects().await;
        let cm = &applied["ConfigMap"];
        assert_eq!(
            cm["data"]["hash"],
            hash.as_str(),
            "the configuration is unchanged"
        );
        let (_, rendered) = load_documents(cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
        let rendered: Vec<String> = rendered.iter().map(ResourceExt::name_any).collect();
        assert_eq!(
            rendered,
            ["db", "web"],
            "every group stays in the ClusterConfig"
        );
        // No Lease request at all: no create, no delete, no apply (the node Leases
        // already carry the labels and the owner reference). The next request is
        // the status; a Lease request would fail this expectation.
        let status = api.status(CLUSTER_STATUS).await;
        assert_eq!(status["syncedCount"], 2);
        api
    });
    reconcile.await.unwrap().unwrap();
    let mut api = server.await.unwrap();

    // The groups' status still names their holders and epochs.
    for (g, owner, epoch) in [(&web, "a", 5), (&db, "b", 3)] {
        let leases = existing.clone();
        let path = format!(
            "/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/{}/status",
            g.name_any()
        );
        let server = tokio::spawn(async move {
            api.leases(leases).await;
            let status = api.status(&path).await;
            assert_eq!(status["owner"], owner);
            assert_eq!(status["epoch"], epoch);
            assert_eq!(status["phase"], "Online");
            api.event().await; // Placed: the fixture's group status had no owner
            api
        });
        reconcile_group(Arc::new(dynamic(g, &group_resource())), ctx.clone())
            .await
            .unwrap();
        api = server.await.unwrap();
    }
}

/// A ledger whose group the store does not hold while the API server still has it
/// (a store behind the API server): the reconciliation stops before rendering or
/// deleting anything, and retries.
#[tokio::test]
async fn a_ledger_of_a_group_missing_only_from_the_store_is_kept_and_nothing_rendered() {
    let web = group("web", "10.77.0.100/24");
    let db = group("db", "10.77.0.101/24");
    let c = cluster();
    let secret = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let existing = vec![held_ledger(&c, &web, "a", 5), held_ledger(&c, &db, "b", 3)];
    // The store lists web only.
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    let db_json = group_json(&db);
    let server = tokio::spawn(async move {
        api.expect(
            Method::GET,
            "/api/v1/namespaces/ns/secrets/c-heartbeat",
            move |_| (StatusCode::OK, serde_json::to_value(&secret).unwrap()),
        )
        .await;
        api.leases(existing).await;
        api.expect(
            Method::GET,
            "/apis/failover.dev/v1alpha1/namespaces/ns/resourcegroups/db",
            move |_| (StatusCode::OK, db_json.clone()),
        )
        .await;
        api
    });
    let result = reconcile_cluster(Arc::new(dynamic(&c, &cluster_resource())), ctx.clone()).await;
    let error = result.unwrap_err();
    assert!(!error.permanent(), "{error}");
    assert!(error.to_string().contains("db"), "{error}");
    drop(ctx);
    let mut handle = server.await.unwrap().0;
    assert!(handle.next_request().await.is_none(), "nothing written");
}

/// Issue 9, finding 5: the operator renders every member's node Lease with an owner
/// reference to the cluster (garbage collection removes it with the cluster) and no
/// spec (the agent's), and deletes the node Lease of a member that left.
#[tokio::test]
async fn node_leases_belong_to_the_cluster_and_leave_with_their_member() {
    let c = cluster();
    let leases = build::node_leases(&c);
    let names: Vec<String> = leases.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["c-node-a", "c-node-b"]);
    for lease in &leases {
        assert_eq!(lease.spec, None);
        let owner = &lease.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("FailoverCluster", "uid-c", Some(true))
        );
        assert_eq!(lease.labels()[names::CLUSTER_LABEL], "c");
    }
    // Rendered but never renewed: no report yet, the member is Unknown.
    let status = cluster_status(
        &c,
        &[],
        None,
        &Reports::from_leases("c", &leases),
        Timestamp::now(),
    );
    assert_eq!(status.members[0].state, MemberState::Unknown);

    let web = group("web", "10.77.0.100/24");
    let hash = render_config(&resolved(&c), std::slice::from_ref(&web))
        .unwrap()
        .hash;
    let c = c.hash(&hash);
    let secret = build::heartbeat_secret(&c, None, Timestamp::now(), [9; KEY_LEN]).secret;
    let mut former = cluster().member("gone");
    former.metadata.uid = c.metadata.uid.clone();
    let existing = vec![
        held_ledger(&c, &web, "a", 1),
        adopted_node_lease(&c, "a", &hash, &[("web", 1)]),
        adopted_node_lease(&former, "gone", &hash, &[]),
    ];
    let (ctx, mut api) = context(std::slice::from_ref(&c), &[group_json(&web)], &nodes());
    run_cluster(ctx, &c, async move {
        api.expect(Method::GET, "/api/v1/namespaces/ns/secrets/c-heartbeat", move |_| {
            (StatusCode::OK, serde_json::to_value(&secret).unwrap())
        })
        .await;
        api.leases(existing).await;
        api.owned_objects().await;
        // a's Lease is up to date; b's is created; gone's is deleted.
        api.node_leases(&["b"]).await;
        api.expect(Method::DELETE, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/c-node-gone", |_| {
            (StatusCode::OK, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
        })
        .await;
        api.status(CLUSTER_STATUS).await;
    })
    .await;
}

// ---------------------------------------------------------------- status from the node reports

/// A node Lease of `node`, renewed `age` ago, reporting `owned` (JSON of the
/// `failover.dev/owned` annotation).
fn reporting_lease(node: &str, age: Duration, owned: Value) -> Lease {
    let mut lease = node_lease(node, age, "h", true, &[]);
    lease
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(names::OWNED.to_owned(), owned.to_string());
    lease
}

/// Issue 9, finding 6: in `quorum: none` no group Lease is written; the owner comes
/// from the node report.
#[test]
fn a_one_member_cluster_without_quorum_shows_its_owner_from_the_node_report() {
    let mut c = cluster();
    c.spec.members.truncate(1);
    c.spec.quorum = QuorumMode::None;
    let web = group("web", "10.77.0.100/24");
    let leases = [reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 1, "reason": "Placed", "message": "a is the first eligible member", "since": "2026-12-01T05:00:00Z"}}),
    )];
    let status = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &leases),
        Timestamp::now(),
    );
    assert_eq!(status.owner.as_deref(), Some("a"));
    assert_eq!(status.epoch, Some(1));
    assert_eq!(status.phase, Some(GroupPhase::Online));
    let transition = status.last_transition.clone().unwrap();
    assert_eq!(transition.reason, "Placed");
    assert_eq!(
        transition.time.0,
        "2026-12-01T05:00:00Z".parse::<Timestamp>().unwrap()
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True", "{ready:?}");
    // Without any report, and without a Lease: Pending, no owner.
    let none = group_status(&web, Some(&c), &[], &Reports::default(), Timestamp::now());
    assert_eq!((none.owner, none.phase), (None, Some(GroupPhase::Pending)));
}

/// Issue 9, finding 8: a failback is recorded with the reason the new owner reports,
/// as soon as it reports it, even while the group Lease still names the old owner;
/// the freshest report (highest epoch of a live member) wins.
#[test]
fn the_owner_and_its_reason_come_from_the_freshest_node_report() {
    let c = cluster().member("c");
    let mut web = group("web", "10.77.0.100/24");
    web.status = Some(crate::api::ResourceGroupStatus {
        owner: Some("b".into()),
        epoch: Some(6),
        ..Default::default()
    });
    let mut ledger = lease(
        &names::group_lease("c", "web"),
        Some("b"),
        Timestamp::now(),
        &[(names::REASON, "OwnerLost"), (names::MESSAGE, "a was lost")],
    );
    ledger.spec.as_mut().unwrap().lease_transitions = Some(6);
    let leases = [
        ledger,
        // a took the group back (epoch 7); b has not written yet that it let go.
        reporting_lease(
            "a",
            Duration::from_millis(50),
            json!({"web": {"epoch": 7, "reason": "Failback", "message": "a is back", "since": "2026-12-01T05:10:00Z"}}),
        ),
        reporting_lease(
            "b",
            Duration::from_millis(400),
            json!({"web": {"epoch": 6, "reason": "OwnerLost", "message": "a was lost", "since": "2026-12-01T05:00:00Z"}}),
        ),
        // c's report is stale (its agent is gone): ignored whatever it claims.
        reporting_lease(
            "c",
            Duration::from_secs(60),
            json!({"web": {"epoch": 9, "reason": "ManualMove", "message": "", "since": "2026-12-01T04:00:00Z"}}),
        ),
    ];
    let reports = Reports::from_leases("c", &leases);
    let status = group_status(&web, Some(&c), &[], &reports, Timestamp::now());
    assert_eq!(status.owner.as_deref(), Some("a"));
    assert_eq!(status.epoch, Some(7));
    assert_eq!(status.phase, Some(GroupPhase::Online));
    assert_eq!(status.last_transition.as_ref().unwrap().reason, "Failback");
    let notices = group_notices(web.status.as_ref().unwrap(), &status);
    assert_eq!(notices[0].reason, "Failback");
    assert_eq!(notices[0].note, "b -> a (epoch 7): a is back");

    // Takeover from a lost owner: a Failover warning.
    let leases = [reporting_lease(
        "c",
        Duration::from_millis(50),
        json!({"web": {"epoch": 7, "reason": "OwnerLost", "message": "b is gone"}}),
    )];
    let status = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &leases),
        Timestamp::now(),
    );
    let notices = group_notices(web.status.as_ref().unwrap(), &status);
    assert_eq!((notices[0].reason, notices[0].warning), ("Failover", true));
    // Without a time of its own, the transition keeps the time shown before.
    let again = {
        let mut web = web.clone();
        web.status = Some(status.clone());
        group_status(
            &web,
            Some(&c),
            &[],
            &Reports::from_leases("c", &leases),
            Timestamp::now() + jiff::SignedDuration::from_secs(5),
        )
    };
    assert_eq!(again.last_transition, status.last_transition);
}

/// Issue 9, finding 8: the Lease watch passes a node Lease to the controllers (no
/// debounce: kube's default is none) as soon as what status shows changes — the
/// owned groups, the view, the config hash — and not on a bare renewal.
#[test]
fn a_change_of_the_owned_groups_triggers_status_and_a_renewal_does_not() {
    let before = reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 1, "reason": "Placed"}}),
    );
    let mut renewed = before.clone();
    renewed.spec.as_mut().unwrap().renew_time = Some(MicroTime(
        Timestamp::now() + jiff::SignedDuration::from_secs(1),
    ));
    assert_eq!(
        super::lease_content(&before),
        super::lease_content(&renewed)
    );
    let changed = reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 2, "reason": "Failback"}}),
    );
    assert_ne!(
        super::lease_content(&before),
        super::lease_content(&changed)
    );
    let mut hash = before.clone();
    hash.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(names::CONFIG_HASH.to_owned(), "h2".to_owned());
    assert_ne!(super::lease_content(&before), super::lease_content(&hash));
}

/// Issue 12: each resource's state, reason and restarts come from the owner's
/// report into `status.resources[]`; a report without them (an older agent) keeps
/// what status showed.
#[test]
fn resource_states_come_from_the_owners_report() {
    let c = cluster();
    let mut web = group("web", "10.77.0.100/24");
    let owned = json!({"web": {"epoch": 2, "reason": "Placed", "message": "m",
    "resources": [
        {"name": "vip", "state": "Online", "reason": "Started", "restarts": 0},
        {"name": "app", "state": "Offline", "reason": "NotRunInThisRelease",
         "message": "workload resources are not run by the agent in this release"},
        {"name": "svc", "state": "Failed", "reason": "StartTimedOut",
         "message": "start took longer than 500ms", "restarts": 2},
    ]}});
    let leases = [reporting_lease("a", Duration::from_millis(100), owned)];
    let status = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &leases),
        Timestamp::now(),
    );
    let shown: Vec<(&str, ResourceState, Option<&str>, u32)> = status
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.state, r.message.as_deref(), r.restarts))
        .collect();
    assert_eq!(
        shown,
        [
            ("vip", ResourceState::Online, Some("Started"), 0),
            (
                "app",
                ResourceState::Offline,
                Some(
                    "NotRunInThisRelease: workload resources are not run by the agent in this release"
                ),
                0
            ),
            (
                "svc",
                ResourceState::Failed,
                Some("StartTimedOut: start took longer than 500ms"),
                2
            ),
        ]
    );
    web.status = Some(status.clone());
    let older = [reporting_lease(
        "a",
        Duration::from_millis(100),
        json!({"web": {"epoch": 2, "reason": "Placed", "message": "m"}}),
    )];
    let kept = group_status(
        &web,
        Some(&c),
        &[],
        &Reports::from_leases("c", &older),
        Timestamp::now(),
    );
    assert_eq!(kept.resources, status.resources);
}
