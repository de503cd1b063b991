//! Every example manifest loads and validates; every validation rule of the issue
//! has a known-bad manifest whose problem names the offending field, and the CRD
//! schema carries the matching constraint for the rules the API server enforces.

mod common;

use std::path::PathBuf;

use common::{by_kind, schema_at};
use failover::api::{
    FailbackPolicy, FailoverCluster, HealthCheckSpec, HttpProbe, KubeDuration, LoadError,
    MemberSpec, Problem, ProcessSpec, QuorumMode, ResourceGroup, StatusRange, TcpProbe,
    VirtualIpSpec, WitnessSpec, WorkloadKind, WorkloadSpec, into_result, load_documents,
    validate_cluster, validate_config, validate_group, validate_heartbeat_ports,
    validate_kubernetes, validate_standalone,
};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

#[test]
fn every_example_loads_and_validates() {
    let mut count = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        count += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# Scenario"),
            "{} must start with a comment saying what it shows",
            path.display()
        );
        let (cluster, groups) =
            load_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            !groups.is_empty(),
            "{} has no ResourceGroup",
            path.display()
        );
        let problems = validate_config(&cluster, &groups);
        assert!(problems.is_empty(), "{}: {problems:#?}", path.display());
        let problems = validate_standalone(&cluster);
        assert!(problems.is_empty(), "{}: {problems:#?}", path.display());
        // And `kubectl apply` takes it unchanged: the operator's Kubernetes checks.
        let problems = validate_kubernetes(&groups);
        assert!(problems.is_empty(), "{}: {problems:#?}", path.display());
    }
    assert_eq!(
        count, 7,
        "one example per scenario of the issue, and redundant heartbeat links"
    );
}

const BASE: &str = r#"
apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: c}
spec:
  members:
    - {node: a, address: 10.77.0.1}
    - {node: b, address: 10.77.0.2}
    - {node: x, address: 10.77.0.3}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: g}
spec:
  cluster: c
  preferredOwners: [a, b]
  resources:
    - name: vip
      virtualIP: {address: 10.77.0.100/24}
    - name: app
      workload: {kind: Deployment, name: app}
      dependsOn: [vip]
    - name: check
      healthCheck: {tcp: {port: 80}}
      dependsOn: [app]
"#;

fn base() -> (FailoverCluster, Vec<ResourceGroup>) {
    load_documents(BASE).unwrap()
}

/// Where the API server enforces a rule, if it can.
enum Schema {
    /// A CEL rule containing this text at this schema location.
    Cel(&'static str, &'static [&'static str], &'static str),
    /// A schema keyword with this value at this location.
    Keyword(
        &'static str,
        &'static [&'static str],
        &'static str,
        serde_json::Value,
    ),
    /// Only the operator (Rust validation) can see it.
    RustOnly,
}

struct Case {
    name: &'static str,
    mutate: fn(&mut FailoverCluster, &mut Vec<ResourceGroup>),
    path: &'static str,
    message: &'static str,
    schema: Schema,
}

fn member(node: &str) -> MemberSpec {
    MemberSpec {
        node: node.to_owned(),
        priority: 100,
        paused: false,
        address: None,
        additional_addresses: Vec::new(),
    }
}

fn cases() -> Vec<Case> {
    use Schema::*;
    use serde_json::json;
    vec![
        Case {
            name: "priority above 255",
            mutate: |c, _| c.spec.members[1].priority = 256,
            path: "spec.members[1].priority",
            message: "out of range 0..=255",
            schema: Keyword(
                "FailoverCluster",
                &["spec", "members", "[]", "priority"],
                "maximum",
                json!(255.0),
            ),
        },
        Case {
            name: "no members",
            mutate: |c, _| {
                c.spec.members.clear();
                c.spec.quorum = QuorumMode::None;
            },
            path: "spec.members",
            message: "at least one member",
            schema: Keyword(
                "FailoverCluster",
                &["spec", "members"],
                "minItems",
                json!(1),
            ),
        },
        Case {
            name: "65 members",
            mutate: |c, g| {
                c.spec.members = (0..65).map(|i| member(&format!("n{i}"))).collect();
                g[0].spec.preferred_owners.clear();
            },
            path: "spec.members",
            message: "at most 64",
            schema: Keyword(
                "FailoverCluster",
                &["spec", "members"],
                "maxItems",
                json!(64),
            ),
        },
        Case {
            name: "duplicate member node",
            mutate: |c, _| c.spec.members[2].node = "a".into(),
            path: "spec.members[2].node",
            message: "duplicate member \"a\"",
            schema: Keyword(
                "FailoverCluster",
                &["spec", "members"],
                "x-kubernetes-list-map-keys",
                json!(["node"]),
            ),
        },
        Case {
            name: "duplicate resource name",
            mutate: |_, g| g[0].spec.resources[2].name = "vip".into(),
            path: "spec.resources[2].name",
            message: "duplicate resource name \"vip\"",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources"],
                "x-kubernetes-list-map-keys",
                json!(["name"]),
            ),
        },
        Case {
            name: "resource with two kinds",
            mutate: |_, g| {
                g[0].spec.resources[1].virtual_ip = Some(VirtualIpSpec {
                    address: "10.77.0.101/24".into(),
                    interface: None,
                })
            },
            path: "spec.resources[1]",
            message: "exactly one of virtualIP, workload, process, healthCheck (found 2)",
            schema: Cel(
                "ResourceGroup",
                &["spec", "resources", "[]"],
                "(has(self.virtualIP) ? 1 : 0)",
            ),
        },
        Case {
            name: "resource with no kind",
            mutate: |_, g| g[0].spec.resources[1].workload = None,
            path: "spec.resources[1]",
            message: "exactly one of virtualIP, workload, process, healthCheck (found 0)",
            schema: Cel("ResourceGroup", &["spec", "resources", "[]"], "== 1"),
        },
        Case {
            name: "malformed CIDR",
            mutate: |_, g| {
                g[0].spec.resources[0].virtual_ip.as_mut().unwrap().address =
                    "10.77.0.300/24".into()
            },
            path: "spec.resources[0].virtualIP.address",
            message: "not a CIDR",
            schema: Cel(
                "ResourceGroup",
                &["spec", "resources", "[]", "virtualIP", "address"],
                "isCIDR(self)",
            ),
        },
        Case {
            name: "CIDR without prefix length",
            mutate: |_, g| {
                g[0].spec.resources[0].virtual_ip.as_mut().unwrap().address = "10.77.0.100".into()
            },
            path: "spec.resources[0].virtualIP.address",
            message: "not a CIDR",
            schema: Cel(
                "ResourceGroup",
                &["spec", "resources", "[]", "virtualIP", "address"],
                "isCIDR(self)",
            ),
        },
        Case {
            name: "deadAfter not longer than interval",
            mutate: |c, _| c.spec.heartbeat.dead_after = KubeDuration::from_millis(200),
            path: "spec.heartbeat.deadAfter",
            message: "must be longer than spec.heartbeat.interval",
            schema: Cel(
                "FailoverCluster",
                &["spec", "heartbeat"],
                "duration(self.deadAfter) > duration(self.interval)",
            ),
        },
        Case {
            name: "interval below 5ms",
            mutate: |c, _| c.spec.heartbeat.interval = KubeDuration::from_millis(4),
            path: "spec.heartbeat.interval",
            message: "at least 5ms",
            schema: Cel(
                "FailoverCluster",
                &["spec", "heartbeat"],
                "duration(self.interval) >= duration('5ms')",
            ),
        },
        Case {
            name: "one voting member with majority quorum",
            mutate: |c, g| {
                c.spec.members.truncate(1);
                g[0].spec.preferred_owners.clear();
            },
            path: "spec.members",
            message: "needs at least 2 voting members",
            schema: Cel(
                "FailoverCluster",
                &["spec"],
                "self.quorum == 'none' || size(self.members) >= 2",
            ),
        },
        Case {
            name: "two voting members with majority quorum",
            mutate: |c, _| c.spec.members.truncate(2),
            path: "spec.quorum",
            message: "majority of 2 members can never fail over: a survivor holds 1 vote of 2; use witness",
            schema: Cel(
                "FailoverCluster",
                &["spec"],
                "self.quorum != 'majority' || size(self.members) != 2",
            ),
        },
        Case {
            name: "witness with three members",
            mutate: |c, _| c.spec.quorum = QuorumMode::Witness,
            path: "spec.quorum",
            message: "witness needs exactly 2 voting members, found 3",
            schema: Cel(
                "FailoverCluster",
                &["spec"],
                "self.quorum != 'witness' || size(self.members) == 2",
            ),
        },
        Case {
            name: "witness address without witness quorum",
            mutate: |c, _| {
                c.spec.witness = Some(WitnessSpec {
                    address: "10.77.0.9".into(),
                    port: None,
                })
            },
            path: "spec.witness",
            message: "is only used with spec.quorum witness",
            schema: Cel(
                "FailoverCluster",
                &["spec"],
                "!has(self.witness) || (has(self.quorum) && self.quorum == 'witness')",
            ),
        },
        Case {
            name: "witness address that is no IP",
            mutate: |c, _| {
                c.spec.members.truncate(2);
                c.spec.quorum = QuorumMode::Witness;
                c.spec.witness = Some(WitnessSpec {
                    address: "witness.example".into(),
                    port: None,
                })
            },
            path: "spec.witness.address",
            message: "is not an IP address",
            schema: Cel(
                "FailoverCluster",
                &["spec", "witness"],
                "isIP(self.address)",
            ),
        },
        Case {
            name: "dependency cycle",
            mutate: |_, g| g[0].spec.resources[0].depends_on = vec!["check".into()],
            path: "spec.resources[0].dependsOn",
            message: "dependency cycle: vip -> check -> app -> vip",
            schema: RustOnly,
        },
        Case {
            name: "dependsOn unknown resource",
            mutate: |_, g| g[0].spec.resources[2].depends_on = vec!["app".into(), "db".into()],
            path: "spec.resources[2].dependsOn[1]",
            message: "unknown resource \"db\"",
            schema: RustOnly,
        },
        Case {
            name: "dependsOn itself",
            mutate: |_, g| g[0].spec.resources[1].depends_on = vec!["app".into()],
            path: "spec.resources[1].dependsOn[0]",
            message: "cannot depend on itself",
            schema: RustOnly,
        },
        Case {
            name: "preferred owner not a member",
            mutate: |_, g| g[0].spec.preferred_owners = vec!["a".into(), "zed".into()],
            path: "spec.preferredOwners[1]",
            message: "\"zed\" is not a member of FailoverCluster/c",
            schema: RustOnly,
        },
        Case {
            name: "preferred owner listed twice",
            mutate: |_, g| g[0].spec.preferred_owners = vec!["a".into(), "b".into(), "a".into()],
            path: "spec.preferredOwners[2]",
            message: "\"a\" is listed twice",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "preferredOwners"],
                "x-kubernetes-list-type",
                json!("set"),
            ),
        },
        Case {
            name: "failback window that never opens",
            mutate: |_, g| {
                g[0].spec.failback = serde_json::from_value(json!({
                    "policy": "Window",
                    "windows": [{"start": "02:00", "end": "02:00"}],
                }))
                .unwrap();
            },
            path: "spec.failback.windows[0].end",
            message: "must differ from start",
            schema: Cel(
                "ResourceGroup",
                &["spec", "failback", "windows", "[]"],
                "self.start != self.end",
            ),
        },
        Case {
            name: "no announcements",
            mutate: |c, _| c.spec.announcements.count = 0,
            path: "spec.announcements.count",
            message: "out of range 1..=100",
            schema: Keyword(
                "FailoverCluster",
                &["spec", "announcements", "count"],
                "minimum",
                json!(1.0),
            ),
        },
        Case {
            name: "group in another namespace than its cluster",
            mutate: |c, g| {
                c.metadata.namespace = Some("prod".into());
                g[0].metadata.namespace = Some("dev".into());
            },
            path: "metadata.namespace",
            message: "differs from the namespace of FailoverCluster/c",
            schema: RustOnly,
        },
        Case {
            name: "group without a name",
            mutate: |_, g| g[0].metadata.name = None,
            path: "metadata.name",
            message: "is required",
            schema: RustOnly,
        },
        Case {
            name: "manual owner not a member",
            mutate: |_, g| g[0].spec.owner = Some("zed".into()),
            path: "spec.owner",
            message: "\"zed\" is not a member",
            schema: RustOnly,
        },
        Case {
            name: "same VIP in two groups of one cluster",
            mutate: |_, g| {
                let mut other = g[0].clone();
                other.metadata.name = Some("h".into());
                other.spec.resources.truncate(1);
                other.spec.resources[0].virtual_ip.as_mut().unwrap().address =
                    "10.77.0.100/32".into();
                g.push(other);
            },
            path: "spec.resources[0].virtualIP.address",
            message: "10.77.0.100 is already used by ResourceGroup/g spec.resources[0]",
            schema: RustOnly,
        },
        Case {
            name: "same VIP twice in one group",
            mutate: |_, g| {
                let mut second = g[0].spec.resources[0].clone();
                second.name = "vip-again".into();
                second.virtual_ip.as_mut().unwrap().address = "10.77.0.100/25".into();
                g[0].spec.resources.push(second);
            },
            path: "spec.resources[3].virtualIP.address",
            message: "10.77.0.100 is already used by spec.resources[0]",
            schema: RustOnly,
        },
        Case {
            name: "group names another cluster",
            mutate: |_, g| g[0].spec.cluster = "other".into(),
            path: "spec.cluster",
            message: "names FailoverCluster \"other\"",
            schema: RustOnly,
        },
        Case {
            name: "member address not an IP",
            mutate: |c, _| c.spec.members[0].address = Some("node-a.example".into()),
            path: "spec.members[0].address",
            message: "not an IP address",
            schema: Cel(
                "FailoverCluster",
                &["spec", "members", "[]"],
                "isIP(self.address)",
            ),
        },
        Case {
            name: "additional member address not an IP",
            mutate: |c, _| {
                for (i, m) in c.spec.members.iter_mut().enumerate() {
                    m.additional_addresses = vec![format!("192.168.77.{}", i + 1)];
                }
                c.spec.members[1].additional_addresses = vec!["link-b.example".into()];
            },
            path: "spec.members[1].additionalAddresses",
            message: "additionalAddresses[0]: \"link-b.example\" is not an IP address",
            schema: Cel(
                "FailoverCluster",
                &["spec", "members", "[]"],
                "self.additionalAddresses.all(a, isIP(a))",
            ),
        },
        Case {
            name: "four additional member addresses",
            mutate: |c, _| {
                for (i, m) in c.spec.members.iter_mut().enumerate() {
                    m.additional_addresses =
                        (1..=4).map(|l| format!("192.168.{l}.{}", i + 1)).collect();
                }
            },
            path: "spec.members[0].additionalAddresses",
            message: "4 addresses; at most 3",
            schema: Keyword(
                "FailoverCluster",
                &["spec", "members", "[]", "additionalAddresses"],
                "maxItems",
                json!(3),
            ),
        },
        Case {
            name: "members with different numbers of links",
            mutate: |c, _| c.spec.members[0].additional_addresses = vec!["192.168.77.1".into()],
            path: "spec.members",
            message: "spec.members[1].additionalAddresses lists 0 addresses, but spec.members[0] lists 1",
            schema: Cel("FailoverCluster", &["spec"], "size(m.additionalAddresses)"),
        },
        Case {
            name: "a heartbeat address used twice in the cluster",
            mutate: |c, _| {
                for (i, m) in c.spec.members.iter_mut().enumerate() {
                    m.additional_addresses = vec![format!("192.168.77.{}", i + 1)];
                }
                c.spec.members[2].additional_addresses = vec!["10.77.0.1".into()];
            },
            path: "spec.members[2].additionalAddresses[0]",
            message: "10.77.0.1 is already used by spec.members[0].address",
            schema: RustOnly,
        },
        Case {
            name: "one link with IPv4 and IPv6 addresses",
            mutate: |c, _| {
                for (i, m) in c.spec.members.iter_mut().enumerate() {
                    m.additional_addresses = vec![format!("192.168.77.{}", i + 1)];
                }
                c.spec.members[1].additional_addresses = vec!["fd77::2".into()];
            },
            path: "spec.members[1].additionalAddresses[0]",
            message: "another IP family than spec.members[0].additionalAddresses[0] on the same link 1",
            schema: RustOnly,
        },
        Case {
            name: "resource name not a DNS label",
            mutate: |_, g| {
                g[0].spec.resources[0].name = "VIP".into();
                g[0].spec.resources[1].depends_on = vec!["VIP".into()];
            },
            path: "spec.resources[0].name",
            message: "must be a DNS label",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources", "[]", "name"],
                "pattern",
                json!("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
            ),
        },
        Case {
            name: "failback Window without windows",
            mutate: |_, g| g[0].spec.failback.policy = FailbackPolicy::Window,
            path: "spec.failback.windows",
            message: "needs at least one window",
            schema: Cel(
                "ResourceGroup",
                &["spec", "failback"],
                "self.policy != 'Window'",
            ),
        },
        Case {
            name: "failback window time out of range",
            mutate: |_, g| {
                let mut failback: failover::api::FailbackSpec =
                    serde_json::from_value(serde_json::json!({
                        "policy": "Window",
                        "windows": [{"start": "22:00", "end": "24:00"}],
                    }))
                    .unwrap();
                std::mem::swap(&mut g[0].spec.failback, &mut failback);
            },
            path: "spec.failback.windows[0].end",
            message: "invalid time of day \"24:00\"",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "failback", "windows", "[]", "end"],
                "pattern",
                json!("^([01][0-9]|2[0-3]):[0-5][0-9]$"),
            ),
        },
        Case {
            name: "health check with tcp and http",
            mutate: |_, g| {
                g[0].spec.resources[2].health_check.as_mut().unwrap().http = Some(HttpProbe {
                    port: 80,
                    host: None,
                    path: "/".into(),
                    status_range: StatusRange::default(),
                })
            },
            path: "spec.resources[2].healthCheck",
            message: "exactly one of tcp, http, exec (found 2)",
            schema: Cel(
                "ResourceGroup",
                &["spec", "resources", "[]", "healthCheck"],
                "(has(self.tcp) ? 1 : 0) + (has(self.http) ? 1 : 0) + (has(self.exec) ? 1 : 0) == 1",
            ),
        },
        Case {
            name: "health check timeout above interval",
            mutate: |_, g| {
                g[0].spec.resources[2].health_check = Some(HealthCheckSpec {
                    tcp: Some(TcpProbe {
                        port: 80,
                        host: None,
                    }),
                    http: None,
                    exec: None,
                    interval: KubeDuration::from_secs(1),
                    timeout: KubeDuration::from_secs(2),
                    restart_limit: 1,
                    restart_period: KubeDuration::from_secs(600),
                    failure_threshold: 3,
                })
            },
            path: "spec.resources[2].healthCheck.timeout",
            message: "must not exceed interval",
            schema: Cel(
                "ResourceGroup",
                &["spec", "resources", "[]", "healthCheck"],
                "duration(self.timeout) <= duration(self.interval)",
            ),
        },
        Case {
            name: "empty workload name",
            mutate: |_, g| {
                g[0].spec.resources[1].workload = Some(WorkloadSpec {
                    kind: WorkloadKind::StatefulSet,
                    name: String::new(),
                })
            },
            path: "spec.resources[1].workload.name",
            message: "must not be empty",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources", "[]", "workload", "name"],
                "minLength",
                json!(1),
            ),
        },
        Case {
            name: "process without a command",
            mutate: |_, g| set_process(g, json!({"command": []})),
            path: "spec.resources[1].process.command",
            message: "must name a program",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources", "[]", "process", "command"],
                "minItems",
                json!(1),
            ),
        },
        Case {
            name: "process environment variable with a bad name",
            mutate: |_, g| {
                set_process(
                    g,
                    json!({"command": ["app"], "env": [{"name": "1A", "value": "x"}]}),
                )
            },
            path: "spec.resources[1].process.env[0].name",
            message: "\"1A\" is not a variable name",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources", "[]", "process", "env", "[]", "name"],
                "pattern",
                json!("^[-._a-zA-Z][-._a-zA-Z0-9]*$"),
            ),
        },
        Case {
            name: "process environment variable twice",
            mutate: |_, g| {
                set_process(
                    g,
                    json!({"command": ["app"], "env": [{"name": "A"}, {"name": "A", "value": "y"}]}),
                )
            },
            path: "spec.resources[1].process.env[1].name",
            message: "duplicate variable \"A\"",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources", "[]", "process", "env"],
                "x-kubernetes-list-map-keys",
                json!(["name"]),
            ),
        },
        Case {
            name: "process with a relative working directory",
            mutate: |_, g| set_process(g, json!({"command": ["app"], "workingDir": "srv"})),
            path: "spec.resources[1].process.workingDir",
            message: "must be an absolute path",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources", "[]", "process", "workingDir"],
                "pattern",
                json!("^/"),
            ),
        },
        Case {
            name: "exec probe without a command",
            mutate: |_, g| {
                let hc = g[0].spec.resources[2].health_check.as_mut().unwrap();
                hc.tcp = None;
                hc.exec = Some(serde_json::from_value(json!({"command": []})).unwrap());
            },
            path: "spec.resources[2].healthCheck.exec.command",
            message: "must name a program",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources", "[]", "healthCheck", "exec", "command"],
                "minItems",
                json!(1),
            ),
        },
        Case {
            name: "failure threshold 0",
            mutate: |_, g| {
                g[0].spec.resources[2]
                    .health_check
                    .as_mut()
                    .unwrap()
                    .failure_threshold = 0
            },
            path: "spec.resources[2].healthCheck.failureThreshold",
            message: "must be at least 1",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "resources", "[]", "healthCheck", "failureThreshold"],
                "minimum",
                json!(1.0),
            ),
        },
        Case {
            name: "http status range upside down",
            mutate: |_, g| set_http_statuses(g, 400, 299),
            path: "spec.resources[2].healthCheck.http.statusRange.max",
            message: "299 is below min (400)",
            schema: Cel(
                "ResourceGroup",
                &[
                    "spec",
                    "resources",
                    "[]",
                    "healthCheck",
                    "http",
                    "statusRange",
                ],
                "self.min <= self.max",
            ),
        },
        Case {
            name: "http status that is not one",
            mutate: |_, g| set_http_statuses(g, 200, 600),
            path: "spec.resources[2].healthCheck.http.statusRange.max",
            message: "600 is not an HTTP status",
            schema: Keyword(
                "ResourceGroup",
                &[
                    "spec",
                    "resources",
                    "[]",
                    "healthCheck",
                    "http",
                    "statusRange",
                    "max",
                ],
                "maximum",
                json!(599.0),
            ),
        },
        Case {
            name: "hook without a command",
            mutate: |_, g| {
                g[0].spec.hook = Some(serde_json::from_value(json!({"command": []})).unwrap())
            },
            path: "spec.hook.command",
            message: "must name a program",
            schema: Keyword(
                "ResourceGroup",
                &["spec", "hook", "command"],
                "minItems",
                json!(1),
            ),
        },
    ]
}

/// Makes the base group's second resource (`app`) a process with this spec.
fn set_process(g: &mut [ResourceGroup], spec: serde_json::Value) {
    let process: ProcessSpec = serde_json::from_value(spec).unwrap();
    let app = &mut g[0].spec.resources[1];
    app.workload = None;
    app.process = Some(process);
}

/// Makes the base group's health check an HTTP probe with this status range.
fn set_http_statuses(g: &mut [ResourceGroup], min: u16, max: u16) {
    let hc = g[0].spec.resources[2].health_check.as_mut().unwrap();
    hc.tcp = None;
    hc.http = Some(HttpProbe {
        port: 80,
        host: None,
        path: "/".into(),
        status_range: StatusRange { min, max },
    });
}

/// A standalone witness pair needs `spec.witness`; in Kubernetes the field is
/// optional (without it the witness is the Lease), and valid either way.
#[test]
fn spec_witness_is_required_standalone_and_optional_in_kubernetes() {
    let (mut cluster, groups) = base();
    cluster.spec.members.truncate(2);
    cluster.spec.quorum = QuorumMode::Witness;
    // Kubernetes without spec.witness: the Lease.
    assert!(validate_config(&cluster, &groups).is_empty());
    assert!(validate_kubernetes(&groups).is_empty());
    assert!(cluster.spec.uses_witness_lease());
    assert!(has_problem(
        &validate_standalone(&cluster),
        "spec.witness",
        "required with quorum witness when the agent runs standalone"
    ));
    cluster.spec.witness = Some(WitnessSpec {
        address: "10.77.0.9".into(),
        port: Some(7800),
    });
    // With it: valid in both modes, and the Lease is no longer the witness.
    assert!(validate_config(&cluster, &groups).is_empty());
    assert!(validate_standalone(&cluster).is_empty());
    assert!(!cluster.spec.uses_witness_lease());
}

/// A process resource is valid on its own and for the standalone agent, and the
/// Kubernetes mode refuses it with a message naming the field and the alternative.
#[test]
fn process_resources_are_refused_in_kubernetes_mode() {
    let (cluster, mut groups) = base();
    assert_eq!(validate_kubernetes(&groups), Vec::new());
    set_process(
        &mut groups,
        serde_json::json!({
            "command": ["/usr/sbin/app", "--serve"],
            "args": ["--port", "8080"],
            "env": [{"name": "MODE", "value": "primary"}],
            "workingDir": "/srv/app",
        }),
    );
    assert_eq!(validate_config(&cluster, &groups), Vec::new());
    let problems = validate_kubernetes(&groups);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].to_string(),
        "ResourceGroup/g: spec.resources[1].process: process resources run only when the agent runs standalone; in Kubernetes use a workload"
    );
}

fn has_problem(problems: &[Problem], path: &str, message: &str) -> bool {
    problems
        .iter()
        .any(|p| p.path == path && p.message.contains(message))
}

#[test]
fn base_manifest_is_valid() {
    let (cluster, groups) = base();
    assert_eq!(validate_config(&cluster, &groups), Vec::new());
}

#[test]
fn every_bad_manifest_names_the_field_in_rust_validation() {
    let mut failures = Vec::new();
    for case in cases() {
        let (mut cluster, mut groups) = base();
        (case.mutate)(&mut cluster, &mut groups);
        let problems = validate_config(&cluster, &groups);
        if !has_problem(&problems, case.path, case.message) {
            failures.push(format!(
                "{}: want `{}: ...{}...`, got {:#?}",
                case.name, case.path, case.message, problems
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_api_server_rule_is_in_the_generated_schema() {
    let mut failures = Vec::new();
    for case in cases() {
        match case.schema {
            Schema::RustOnly => {}
            Schema::Cel(kind, at, rule) => {
                let schema = schema_at(&by_kind(kind), at);
                let rules = schema.x_kubernetes_validations.unwrap_or_default();
                if !rules.iter().any(|r| r.rule.contains(rule)) {
                    failures.push(format!(
                        "{}: no CEL rule containing {rule:?} at {at:?}",
                        case.name
                    ));
                }
                if rules
                    .iter()
                    .any(|r| r.message.as_deref().is_none_or(str::is_empty))
                {
                    failures.push(format!(
                        "{}: a CEL rule at {at:?} has no message",
                        case.name
                    ));
                }
            }
            Schema::Keyword(kind, at, keyword, want) => {
                let schema = serde_json::to_value(schema_at(&by_kind(kind), at)).unwrap();
                if schema.get(keyword) != Some(&want) {
                    failures.push(format!(
                        "{}: want {keyword} = {want} at {at:?}, schema is {schema}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A malformed duration cannot be represented in the typed spec: it fails the
/// document when it is deserialized, naming the block, the line and the value, and the API
/// server refuses it first by the schema's pattern.
#[test]
fn a_malformed_duration_fails_its_document_naming_the_field() {
    let bad = BASE.replace(
        "    - {node: x, address: 10.77.0.3}\n",
        "    - {node: x, address: 10.77.0.3}\n  heartbeat: {interval: 0.2s}\n",
    );
    assert_ne!(bad, BASE);
    let error = load_documents(&bad).unwrap_err();
    assert!(
        matches!(&error, LoadError::Invalid { index: 0, kind, .. } if kind == "FailoverCluster"),
        "{error}"
    );
    let text = error.to_string();
    // The YAML deserializer names the block and the line of the value.
    assert!(text.contains("spec.heartbeat"), "{text}");
    assert!(text.contains("line 10"), "{text}");
    assert!(text.contains("invalid duration \"0.2s\""), "{text}");

    let schema = serde_json::to_value(schema_at(
        &by_kind("FailoverCluster"),
        &["spec", "heartbeat", "interval"],
    ))
    .unwrap();
    assert_eq!(schema["pattern"], "^([0-9]+(ms|s|m|h))+$", "{schema}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let (mut cluster, mut groups) = base();
    cluster.spec.members[1].priority = 300;
    cluster.spec.heartbeat.dead_after = KubeDuration::from_millis(1);
    groups[0].spec.resources[2].depends_on = vec!["db".into()];
    groups[0].spec.preferred_owners.push("zed".into());
    let problems = validate_config(&cluster, &groups);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.members[1].priority",
            "spec.heartbeat.deadAfter",
            "spec.preferredOwners[2]",
            "spec.resources[2].dependsOn[0]",
        ]
    );
    assert_eq!(
        problems[3].to_string(),
        "ResourceGroup/g: spec.resources[2].dependsOn[0]: unknown resource \"db\""
    );
}

#[test]
fn heartbeat_port_conflicts_are_reported_on_the_later_cluster() {
    let (first, _) = base();
    let mut second = first.clone();
    second.metadata.name = Some("d".into());
    second.spec.members[0].node = "other".into();
    // Shares nodes b and x with `c`, same default port: `d` sorts later by name.
    let problems = validate_heartbeat_ports(&[second.clone(), first.clone()]);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].object, "FailoverCluster/d");
    assert_eq!(problems[0].path, "spec.heartbeat.port");
    assert!(
        problems[0]
            .message
            .contains("FailoverCluster/c, which shares node \"b\"")
    );

    second.spec.heartbeat.port = 7708;
    assert!(validate_heartbeat_ports(&[first.clone(), second.clone()]).is_empty());

    second.spec.heartbeat.port = first.spec.heartbeat.port;
    second.spec.members = vec![member("p"), member("q")];
    assert!(
        validate_heartbeat_ports(&[first, second]).is_empty(),
        "no shared node"
    );
}

#[test]
fn validate_methods_match_the_functions() {
    let (cluster, mut groups) = base();
    groups[0].spec.owner = Some("zed".into());
    assert_eq!(cluster.validate(), validate_cluster(&cluster));
    assert_eq!(
        groups[0].validate(&cluster),
        validate_group(&groups[0], &cluster)
    );
    assert_eq!(groups[0].validate(&cluster).len(), 1);
    let err = into_result(groups[0].validate(&cluster)).unwrap_err();
    assert!(err.to_string().contains("spec.owner"), "{err}");
    assert!(into_result(cluster.validate()).is_ok());
}

fn openapi_schema(kind: &str) -> serde_json::Value {
    serde_json::to_value(common::root_schema(&by_kind(kind))).unwrap()
}

fn object_json(
    cluster: &FailoverCluster,
    groups: &[ResourceGroup],
    kind: &str,
) -> serde_json::Value {
    match kind {
        "FailoverCluster" => serde_json::to_value(cluster).unwrap(),
        // The table mutates the first group; a case that adds a group targets the
        // cluster-wide view, which CEL cannot see.
        _ => serde_json::to_value(&groups[0]).unwrap(),
    }
}

#[test]
fn cel_rules_compile() {
    for kind in ["FailoverCluster", "ResourceGroup"] {
        let compiled = kube_cel::compile_schema(&openapi_schema(kind));
        assert!(
            !compiled.has_errors(),
            "{kind}: {:#?}",
            compiled.compilation_errors()
        );
    }
}

/// Runs kube-cel's static analysis (variable scope, cost estimate, list bounds) on
/// every rule, at the schema node it is attached to.
/// The variables CEL's comprehension macros bind in `rule` (`m` in `.all(m, …)`).
fn comprehension_variables(rule: &str) -> Vec<&str> {
    let mut bound = Vec::new();
    for mac in [".all(", ".exists(", ".exists_one(", ".map(", ".filter("] {
        for (at, _) in rule.match_indices(mac) {
            let rest = &rule[at + mac.len()..];
            if let Some((name, _)) = rest.split_once(',') {
                let name = name.trim();
                if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    bound.push(name);
                }
            }
        }
    }
    bound
}

#[test]
fn cel_rules_pass_static_analysis() {
    fn walk(
        node: &kube_cel::CompiledSchema,
        at: &str,
        found: &mut usize,
        warnings: &mut Vec<String>,
    ) {
        for compiled in node.validations.iter().flatten() {
            *found += 1;
            let rule = &compiled.rule.rule;
            // kube-cel 0.8 reports the variable a macro binds (`x` in
            // `self.list.all(x, ...)`) as out of scope; the API server binds it.
            let bound = comprehension_variables(rule);
            for w in kube_cel::analyze_rule(rule, node, kube_cel::ScopeContext::CrdValidation) {
                if bound.iter().any(|v| {
                    w.message
                        .starts_with(&format!("variable '{v}' is not available"))
                }) {
                    continue;
                }
                warnings.push(format!("{at}: {rule}: {}", w.message));
            }
        }
        for (name, child) in &node.properties {
            walk(child, &format!("{at}.{name}"), found, warnings);
        }
        if let Some(items) = &node.items {
            walk(items, &format!("{at}[]"), found, warnings);
        }
    }
    let mut found = 0;
    let mut warnings = Vec::new();
    for kind in ["FailoverCluster", "ResourceGroup"] {
        walk(
            &kube_cel::compile_schema(&openapi_schema(kind)),
            kind,
            &mut found,
            &mut warnings,
        );
    }
    assert!(found >= 10, "only {found} rules found; the walk is broken");
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// Evaluates the CEL rules of the generated CRDs as the API server would (after
/// applying schema defaults): each bad manifest is rejected by its rule, at its
/// field, and the valid ones pass.
#[test]
fn every_cel_rule_rejects_its_bad_manifest() {
    let validator = kube_cel::Validator::new();
    let (cluster, groups) = base();
    for kind in ["FailoverCluster", "ResourceGroup"] {
        let result = validator.validate(
            &openapi_schema(kind),
            &object_json(&cluster, &groups, kind),
            None,
        );
        assert!(result.is_ok(), "base {kind}: {result:?}");
    }
    let mut failures = Vec::new();
    for case in cases() {
        let Schema::Cel(kind, _, rule) = case.schema else {
            continue;
        };
        let (mut cluster, mut groups) = base();
        (case.mutate)(&mut cluster, &mut groups);
        let object = object_json(&cluster, &groups, kind);
        match validator.validate(&openapi_schema(kind), &object, None) {
            Ok(()) => failures.push(format!("{}: CEL accepted it", case.name)),
            Err(errors) => {
                let hit = errors
                    .iter()
                    .any(|e| e.rule.contains(rule) && e.field_path == case.path);
                if !hit {
                    failures.push(format!(
                        "{}: want rule {rule:?} at {}, got {errors:#?}",
                        case.name, case.path
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_example_passes_the_cel_rules() {
    let validator = kube_cel::Validator::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let (cluster, groups) = load_documents(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut objects = vec![("FailoverCluster", serde_json::to_value(&cluster).unwrap())];
        objects.extend(
            groups
                .iter()
                .map(|g| ("ResourceGroup", serde_json::to_value(g).unwrap())),
        );
        for (kind, object) in objects {
            let result = validator.validate(&openapi_schema(kind), &object, None);
            assert!(result.is_ok(), "{}: {kind}: {result:?}", path.display());
        }
    }
}

/// A FailoverCluster or ResourceGroup name is the value of a label on every object
/// rendered for it (at most 63 characters): the CRDs' root CEL rules refuse longer
/// ones as the API server would, and the Rust validation (standalone files, an older
/// CRD) says the same. `<cluster>-node-<node>` is a Lease name (at most 253): only
/// the Rust validation checks it (the operator then renders nothing).
#[test]
fn names_longer_than_a_label_value_or_a_lease_name_are_refused() {
    use failover::api::validate_config;
    use kube::ResourceExt;
    let validator = kube_cel::Validator::new();
    let refused_by = |kind: &str, object: serde_json::Value| -> Vec<String> {
        match validator.validate(&openapi_schema(kind), &object, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(|e| e.rule.clone()).collect(),
        }
    };
    let (cluster, groups) = base();
    let longest = "c".repeat(63);
    let too_long = "c".repeat(64);

    let mut c = cluster.clone();
    c.metadata.name = Some(longest.clone());
    assert_eq!(
        refused_by("FailoverCluster", serde_json::to_value(&c).unwrap()),
        Vec::<String>::new()
    );
    c.metadata.name = Some(too_long.clone());
    let rules = refused_by("FailoverCluster", serde_json::to_value(&c).unwrap());
    assert!(
        rules
            .iter()
            .any(|r| r.contains("size(self.metadata.name) <= 63")),
        "{rules:?}"
    );
    let mut gs = groups.clone();
    for g in &mut gs {
        g.spec.cluster = too_long.clone();
    }
    assert!(has_problem(
        &validate_config(&c, &gs),
        "metadata.name",
        "at most 63"
    ));

    let mut c = cluster.clone();
    c.metadata.name = Some(longest.clone());
    c.spec.members[0].node = format!("n{}", ".n".repeat(92)); // 185 characters
    let mut gs = groups.clone();
    for g in &mut gs {
        g.spec.cluster = c.name_any();
    }
    assert!(has_problem(
        &validate_config(&c, &gs),
        "spec.members[0].node",
        "at most 253"
    ));
    c.spec.members[0].node.truncate(184);
    assert_eq!(failover::api::validate_cluster(&c), Vec::new());

    let mut g = groups[0].clone();
    g.metadata.name = Some("g".repeat(64));
    let rules = refused_by("ResourceGroup", serde_json::to_value(&g).unwrap());
    assert!(
        rules
            .iter()
            .any(|r| r.contains("size(self.metadata.name) <= 63")),
        "{rules:?}"
    );
    assert!(has_problem(
        &validate_config(&cluster, &[g]),
        "metadata.name",
        "at most 63"
    ));
}
