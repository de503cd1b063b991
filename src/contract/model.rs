//! What every agent runs, standalone or from the operator's ClusterConfig: a
//! validated FailoverCluster and its ResourceGroups converted into the decision
//! core's [`ClusterModel`], the VIPs of every group, the members' heartbeat
//! addresses, the announcement settings and a stable hash of the whole
//! configuration. The operator hashes what it renders with the same [`config_hash`],
//! so a member's reported hash says whether it runs the operator's configuration.
//!
//! Owns that conversion and the hash. It is pure: it must never read files (the
//! agent reads its file and key files itself), open sockets or touch addresses, and
//! never accept a configuration that `api`'s validation rejects (it runs that
//! validation itself and reports every problem).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{AddrParseError, IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::{Time as CivilTime, Weekday as CivilWeekday};
use jiff::tz::TimeZone;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::plan::{
    CheckPlan, HookPlan, PlanError, PlannedResource, ProbePlan, ProcessPlan, ResourceKind,
    RestartPolicy, start_order,
};
use crate::api::duration::whole_seconds_up;
use crate::api::group::TimeOfDayError;
use crate::api::{
    self, FailbackPolicy as ApiFailback, FailoverCluster, InvalidConfig, LoadError, ResourceGroup,
    Weekday,
};
use crate::placement::{
    ClusterModel, DailyWindow, FailbackPolicy, FailoverLimit, GroupModel, MemberModel,
    QuarantinePolicy, QuorumMode,
};

/// Namespace of a standalone document without `metadata.namespace`, as kubectl
/// would apply it.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Why a configuration cannot be run by the standalone agent. Each variant names the
/// field it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot load the configuration")]
    Load(#[source] LoadError),
    #[error(transparent)]
    Invalid(InvalidConfig),
    #[error("{field}: invalid time of day")]
    TimeOfDay {
        field: String,
        #[source]
        source: TimeOfDayError,
    },
    #[error("{field}: unknown time zone {name:?}")]
    TimeZone {
        field: String,
        name: String,
        #[source]
        source: jiff::Error,
    },
    #[error("{field}: invalid address")]
    Address {
        field: String,
        #[source]
        source: AddrParseError,
    },
    #[error("{field}: invalid CIDR")]
    Cidr {
        field: String,
        #[source]
        source: ipnet::AddrParseError,
    },
    #[error("{field}: priority {value} is above 255")]
    Priority { field: String, value: u32 },
    #[error("--node {node}: not a member of cluster {cluster}")]
    NotAMember { node: String, cluster: String },
    #[error("{object}: spec.resources: cannot order the resources")]
    Plan {
        object: String,
        #[source]
        source: PlanError,
    },
}

/// A virtual IP of a group, as the configuration names it (`agent::vip` binds it
/// to an interface of the node).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VirtualIp {
    /// The address itself.
    pub address: IpAddr,
    /// CIDR prefix length the address is added with (e.g. 24 for 10.77.0.100/24).
    pub prefix_len: u8,
    /// Interface to add it on; `None` picks the interface that has an address whose
    /// subnet contains the VIP.
    pub interface: Option<String>,
}

impl fmt::Display for VirtualIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Where the agent runs, which decides what a configuration may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// From a file, without Kubernetes: the witness is `failover witness` at
    /// `spec.witness`, which is required.
    Standalone,
    /// From the operator's ClusterConfig, with the API server at hand.
    Kubernetes,
}

/// Gratuitous ARP / unsolicited NA settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announcements {
    /// Announcements right after a VIP comes up.
    pub count: u32,
    /// Pause between them.
    pub spacing: Duration,
    /// Re-announce this often while the VIP is held; `None` disables.
    pub refresh: Option<Duration>,
}

/// A health check as the owner runs it; a probe without a host goes to `vip` (the
/// group's first VIP), else to localhost.
fn check_plan(check: &api::HealthCheckSpec, vip: Option<IpAddr>) -> CheckPlan {
    let host = |own: &Option<String>| match (own, vip) {
        (Some(host), _) => host.clone(),
        (None, Some(vip)) => vip.to_string(),
        (None, None) => LOCALHOST.to_owned(),
    };
    let probe = match (&check.tcp, &check.http, &check.exec) {
        (Some(tcp), _, _) => ProbePlan::Tcp {
            host: host(&tcp.host),
            port: tcp.port,
        },
        (None, Some(http), _) => ProbePlan::Http {
            host: host(&http.host),
            port: http.port,
            path: http.path.clone(),
            statuses: http.status_range.min..=http.status_range.max,
        },
        (None, None, exec) => ProbePlan::Exec {
            // Exactly one probe is set (validated): this is the exec one.
            argv: exec.as_ref().map(|e| e.command.clone()).unwrap_or_default(),
        },
    };
    CheckPlan {
        probe,
        interval: check.interval.get(),
        timeout: check.timeout.get(),
        failure_threshold: check.failure_threshold.max(1),
        restart: RestartPolicy {
            limit: check.restart_limit,
            period: check.restart_period.get(),
        },
    }
}

/// Where a probe without a host and a group without a VIP connects.
const LOCALHOST: &str = "localhost";

/// Everything the agent runs, for every member alike.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub model: Arc<ClusterModel>,
    /// Stable hash of the configuration (see [`config_hash`]).
    pub hash: u64,
    /// Heartbeat addresses of every member, one per link (link 0 `address`, then
    /// `additionalAddresses`), with the cluster's heartbeat port. Every member has
    /// the same number of links (validated).
    pub addresses: BTreeMap<String, Vec<SocketAddr>>,
    /// Witness quorum with `spec.witness`: where `failover witness` listens (its
    /// port defaulting to the heartbeat port), in both modes; `None` otherwise (in
    /// Kubernetes the witness is then the Lease).
    pub witness: Option<SocketAddr>,
    /// The VIPs of every group, in spec order (empty for a group without VIPs).
    pub vips: BTreeMap<String, Vec<VirtualIp>>,
    /// The resources of every group in start order (`dependsOn` first); they stop
    /// in the reverse order.
    pub resources: BTreeMap<String, Vec<PlannedResource>>,
    pub announcements: Announcements,
    /// What is in the configuration but not run (or not as written) by the agent.
    pub warnings: Vec<String>,
    /// The transition hook of every group that has one.
    pub hooks: BTreeMap<String, HookPlan>,
    /// Group -> its clear-failures value (the `failover.dev/clear-failures`
    /// annotation); a new value resets the group's failover count on every member.
    /// Outside the hash: clearing changes no configuration.
    pub clear_failures: BTreeMap<String, String>,
}

impl AgentConfig {
    /// Loads multi-document YAML text and converts it for the standalone agent.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let (cluster, groups) = api::load_documents(text).map_err(ConfigError::Load)?;
        Self::convert(&cluster, &groups, Mode::Standalone)
    }

    /// Loads the ClusterConfig's `config.yaml` (the same documents, addresses
    /// resolved by the operator) for the Kubernetes mode, where witness quorum works
    /// with or without `spec.witness` (without it the witness is the Lease).
    pub fn from_cluster_yaml(text: &str) -> Result<Self, ConfigError> {
        let (cluster, groups) = api::load_documents(text).map_err(ConfigError::Load)?;
        Self::convert(&cluster, &groups, Mode::Kubernetes)
    }

    /// Validates (as `failover validate --standalone` does: every member needs an
    /// address in both modes) and converts.
    pub fn convert(
        cluster: &FailoverCluster,
        groups: &[ResourceGroup],
        mode: Mode,
    ) -> Result<Self, ConfigError> {
        let mut problems = api::validate_config(cluster, groups);
        match mode {
            Mode::Standalone => problems.extend(api::validate_standalone(cluster)),
            Mode::Kubernetes => {
                problems.extend(api::validate_member_addresses(cluster));
                problems.extend(api::validate_kubernetes(groups));
            }
        }
        api::into_result(problems).map_err(ConfigError::Invalid)?;
        let spec = &cluster.spec;
        let quorum = match spec.quorum {
            api::QuorumMode::Witness => QuorumMode::Witness,
            api::QuorumMode::Majority => QuorumMode::Majority,
            api::QuorumMode::None => QuorumMode::None,
        };

        let mut members = Vec::with_capacity(spec.members.len());
        let mut addresses = BTreeMap::new();
        let port = spec.heartbeat.port;
        for (i, m) in spec.members.iter().enumerate() {
            let priority = u8::try_from(m.priority).map_err(|_| ConfigError::Priority {
                field: format!("spec.members[{i}].priority"),
                value: m.priority,
            })?;
            members.push(MemberModel {
                name: m.node.clone(),
                priority,
                paused: m.paused,
            });
            // validate_standalone guarantees an address; an absent one is still an
            // error here rather than a panic.
            let links = m
                .links()
                .map(|(field, text)| {
                    let ip: IpAddr = text.unwrap_or_default().parse().map_err(|source| {
                        ConfigError::Address {
                            field: format!("spec.members[{i}].{field}"),
                            source,
                        }
                    })?;
                    Ok(SocketAddr::new(ip, port))
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            addresses.insert(m.node.clone(), links);
        }

        // Validated: set only with witness quorum (and required standalone).
        let witness = match &spec.witness {
            Some(w) => Some(SocketAddr::new(
                w.address().map_err(|source| ConfigError::Address {
                    field: "spec.witness.address".to_owned(),
                    source,
                })?,
                w.port.unwrap_or(port),
            )),
            None => None,
        };
        let quarantine = (spec.quarantine.failures != 0).then(|| QuarantinePolicy {
            failures: spec.quarantine.failures,
            period: spec.quarantine.period.get(),
            duration: spec.quarantine.duration.get(),
        });
        let announcements = Announcements {
            count: spec.announcements.count.max(1),
            spacing: spec.announcements.spacing.get(),
            refresh: spec.announcements.refresh(),
        };

        let mut sorted: Vec<&ResourceGroup> = groups.iter().collect();
        sorted.sort_by_key(|g| g.name_any());
        let mut models = Vec::with_capacity(sorted.len());
        let mut vips = BTreeMap::new();
        let mut resources = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut hooks = BTreeMap::new();
        // A process's stop is a step of the event loop (see `ProcessSpec`).
        let step_timeout = spec.heartbeat.dead_after.get() / 2;
        for group in &sorted {
            let name = group.name_any();
            let object = format!("ResourceGroup/{name}");
            models.push(group_model(group, &object)?);
            let mut list = Vec::new();
            let mut planned = Vec::with_capacity(group.spec.resources.len());
            // Probes without a host go to the group's first VIP.
            let first_vip = group.spec.resources.iter().find_map(|r| match r.kind() {
                Some(api::ResourceKind::VirtualIp(v)) => v.network().ok().map(|n| n.addr()),
                _ => None,
            });
            for (i, resource) in group.spec.resources.iter().enumerate() {
                let kind = match resource.kind() {
                    Some(api::ResourceKind::VirtualIp(v)) => {
                        let net = v.network().map_err(|source| ConfigError::Cidr {
                            field: format!("{object}: spec.resources[{i}].virtualIP.address"),
                            source,
                        })?;
                        let vip = VirtualIp {
                            address: net.addr(),
                            prefix_len: net.prefix_len(),
                            interface: v.interface.clone(),
                        };
                        list.push(vip.clone());
                        ResourceKind::VirtualIp(vip)
                    }
                    Some(api::ResourceKind::Workload(_)) => ResourceKind::Workload,
                    Some(api::ResourceKind::HealthCheck(check)) => {
                        ResourceKind::HealthCheck(check_plan(check, first_vip))
                    }
                    Some(api::ResourceKind::Process(process)) => {
                        let grace = process.stop_grace_period.get();
                        if grace > step_timeout {
                            warnings.push(format!(
                                "{object}: spec.resources[{i}] ({}): stopGracePeriod {grace:?} is cut to {step_timeout:?}, half of deadAfter: the stop is a step of the agent's event loop",
                                resource.name
                            ));
                        }
                        ResourceKind::Process(ProcessPlan {
                            argv: process
                                .command
                                .iter()
                                .chain(&process.args)
                                .cloned()
                                .collect(),
                            env: process
                                .env
                                .iter()
                                .map(|v| (v.name.clone(), v.value.clone()))
                                .collect(),
                            working_dir: process.working_dir.as_ref().map(Into::into),
                            stop_grace: grace.min(step_timeout),
                            restart: RestartPolicy {
                                limit: process.restart_limit,
                                period: process.restart_period.get(),
                            },
                        })
                    }
                    // Not exactly one kind: the validation above refused it already.
                    None => continue,
                };
                if !kind.is_run() {
                    warnings.push(format!(
                        "{object}: spec.resources[{i}] ({}): {} resources are not run by the agent in this release; reported as {}",
                        resource.name,
                        kind.label(),
                        crate::contract::report::NOT_RUN,
                    ));
                }
                planned.push(PlannedResource {
                    name: resource.name.clone(),
                    depends_on: resource.depends_on.clone(),
                    kind,
                });
            }
            if let Some(hook) = &group.spec.hook {
                hooks.insert(
                    name.clone(),
                    HookPlan {
                        argv: hook.command.clone(),
                        timeout: hook.timeout.get(),
                    },
                );
            }
            let ordered = start_order(planned).map_err(|source| ConfigError::Plan {
                object: object.clone(),
                source,
            })?;
            vips.insert(name.clone(), list);
            resources.insert(name, ordered);
        }

        let model = ClusterModel {
            cluster: cluster_id(cluster),
            members,
            quorum,
            interval: spec.heartbeat.interval.get(),
            dead_after: spec.heartbeat.dead_after.get(),
            quarantine,
            groups: models,
        };
        Ok(AgentConfig {
            model: Arc::new(model),
            hash: config_hash(cluster, groups),
            addresses,
            witness,
            vips,
            resources,
            announcements,
            warnings,
            hooks,
            clear_failures: groups
                .iter()
                .filter_map(|g| {
                    let value = g.annotations().get(api::CLEAR_FAILURES_ANNOTATION)?;
                    Some((g.name_any(), value.clone()))
                })
                .collect(),
        })
    }

    /// The heartbeat socket addresses of `node`, one per link (link 0 first), or an
    /// error if it is not a member.
    pub fn links_of(&self, node: &str) -> Result<&[SocketAddr], ConfigError> {
        self.addresses
            .get(node)
            .map(Vec::as_slice)
            .ok_or_else(|| ConfigError::NotAMember {
                node: node.to_owned(),
                cluster: self.model.cluster.clone(),
            })
    }

    /// Every VIP of every group.
    pub fn all_vips(&self) -> Vec<VirtualIp> {
        self.vips.values().flatten().cloned().collect()
    }

    /// How long a VIP lives in the kernel without renewal: `deadAfter` rounded up to
    /// whole seconds, at least one second (netlink lifetimes are whole seconds).
    pub fn vip_lifetime(&self) -> Duration {
        Duration::from_secs(whole_seconds_up(self.model.dead_after))
    }
}

/// `namespace/name` of the cluster; documents without a namespace are in `default`.
pub fn cluster_id(cluster: &FailoverCluster) -> String {
    let namespace = cluster
        .namespace()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    format!("{namespace}/{}", cluster.name_any())
}

fn group_model(group: &ResourceGroup, object: &str) -> Result<GroupModel, ConfigError> {
    let spec = &group.spec;
    let field = |path: &str| format!("{object}: {path}");
    let fb = &spec.failback;
    let failback = match fb.policy {
        ApiFailback::Never => FailbackPolicy::Never,
        ApiFailback::Immediate => FailbackPolicy::Immediate {
            stabilize_for: fb.stabilize_for.get(),
        },
        ApiFailback::Window => {
            let time_zone =
                TimeZone::get(&fb.time_zone).map_err(|source| ConfigError::TimeZone {
                    field: field("spec.failback.timeZone"),
                    name: fb.time_zone.clone(),
                    source,
                })?;
            let mut windows = Vec::with_capacity(fb.windows.len());
            for (i, w) in fb.windows.iter().enumerate() {
                let time = |path: &str, text: &str, minute: Result<u16, TimeOfDayError>| {
                    minute
                        .and_then(|m| {
                            let (h, m) = (i8::try_from(m / 60), i8::try_from(m % 60));
                            match (h, m) {
                                (Ok(h), Ok(m)) => CivilTime::new(h, m, 0, 0).ok(),
                                _ => None,
                            }
                            .ok_or_else(|| TimeOfDayError(text.to_owned()))
                        })
                        .map_err(|source| ConfigError::TimeOfDay {
                            field: field(&format!("spec.failback.windows[{i}].{path}")),
                            source,
                        })
                };
                windows.push(DailyWindow {
                    start: time("start", &w.start, w.start_minute())?,
                    end: time("end", &w.end, w.end_minute())?,
                    days: w.days.iter().map(|&d| weekday(d)).collect(),
                });
            }
            FailbackPolicy::Window {
                stabilize_for: fb.stabilize_for.get(),
                windows,
                time_zone,
            }
        }
    };
    Ok(GroupModel {
        name: group.name_any(),
        preferred_owners: spec.preferred_owners.clone(),
        failback,
        failover_limit: Some(FailoverLimit {
            max: spec.failover_limit.max_failovers,
            period: spec.failover_limit.period.get(),
        }),
        owner: spec.owner.clone(),
    })
}

fn weekday(day: Weekday) -> CivilWeekday {
    match day {
        Weekday::Mon => CivilWeekday::Monday,
        Weekday::Tue => CivilWeekday::Tuesday,
        Weekday::Wed => CivilWeekday::Wednesday,
        Weekday::Thu => CivilWeekday::Thursday,
        Weekday::Fri => CivilWeekday::Friday,
        Weekday::Sat => CivilWeekday::Saturday,
        Weekday::Sun => CivilWeekday::Sunday,
    }
}

/// A stable hash of a configuration: the first 8 bytes (big endian) of the SHA-256
/// of the canonical JSON of the cluster id, the cluster spec and the groups (name
/// and spec) sorted by name. Canonical: serde_json objects, whose keys serialize in
/// a fixed order, so the same documents give the same hash on every member no
/// matter how the YAML was written; status and other metadata are left out.
pub fn config_hash(cluster: &FailoverCluster, groups: &[ResourceGroup]) -> u64 {
    let mut sorted: Vec<&ResourceGroup> = groups.iter().collect();
    sorted.sort_by_key(|g| g.name_any());
    let document = serde_json::json!({
        "cluster": cluster_id(cluster),
        "spec": &cluster.spec,
        "groups": sorted
            .iter()
            .map(|g| serde_json::json!({ "name": g.name_any(), "spec": &g.spec }))
            .collect::<Vec<_>>(),
    });
    let digest = Sha256::digest(document.to_string().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A config hash as it is written in the ConfigMap, the node Lease and status: 16
/// lowercase hex digits.
pub fn hash_text(hash: u64) -> String {
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: lab}
spec:
  members:
    - {node: n1, priority: 200, address: 10.78.0.1}
    - {node: n2, priority: 100, address: 10.78.0.2}
    - {node: n3, priority: 50, address: 10.78.0.3, paused: true}
  heartbeat: {interval: 50ms, deadAfter: 250ms, port: 7800}
  announcements: {count: 2, spacing: 20ms, refreshInterval: 0s}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: web}
spec:
  cluster: lab
  preferredOwners: [n2, n1]
  failback:
    policy: Window
    stabilizeFor: 5s
    timeZone: Europe/Berlin
    windows: [{start: '22:00', end: '06:30', days: [Sat, Sun]}]
  failoverLimit: {maxFailovers: 2, period: 10m}
  resources:
    - {name: vip, virtualIP: {address: 10.78.0.100/24, interface: eth0}}
    - {name: vip6, virtualIP: {address: 'fd78::100/64'}}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: db}
spec:
  cluster: lab
  owner: n3
  failback: {policy: Immediate, stabilizeFor: 2s}
  resources:
    - {name: vip, virtualIP: {address: 10.78.0.101/24}}
    - {name: app, workload: {kind: Deployment, name: db}}
";

    /// Standalone, a group's clear-failures annotation is read from its document,
    /// and changing it changes no configuration (the hash stays).
    #[test]
    fn clear_failures_values_come_from_the_annotation_outside_the_hash() {
        let plain = AgentConfig::from_yaml(YAML).unwrap();
        assert!(plain.clear_failures.is_empty());
        let annotated = YAML.replace(
            "metadata: {name: web}",
            "metadata: {name: web, annotations: {failover.dev/clear-failures: '1764580000'}}",
        );
        let cleared = AgentConfig::from_yaml(&annotated).unwrap();
        assert_eq!(
            cleared.clear_failures,
            BTreeMap::from([("web".to_owned(), "1764580000".to_owned())])
        );
        assert_eq!(cleared.hash, plain.hash);
    }

    #[test]
    fn checks_processes_and_hooks_become_plans() {
        let yaml = r#"
apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: c, namespace: n}
spec:
  members: [{node: a, address: 10.0.0.1}]
  heartbeat: {deadAfter: 1s}
  quorum: none
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: g, namespace: n}
spec:
  cluster: c
  hook: {command: [/bin/notify, -q], timeout: 5s}
  resources:
    - {name: vip, virtualIP: {address: 10.0.0.50/24}}
    - name: daemon
      dependsOn: [vip]
      process:
        command: [/usr/sbin/daemon, -f]
        args: [--port, "80"]
        env: [{name: MODE, value: ha}]
        workingDir: /srv
        stopGracePeriod: 10s
    - name: on-vip
      dependsOn: [daemon]
      healthCheck: {tcp: {port: 80}, restartLimit: 2, restartPeriod: 1m}
    - name: local
      healthCheck: {http: {port: 8080, host: 127.0.0.1, path: /ready}}
"#;
        let c = AgentConfig::from_yaml(yaml).unwrap();
        let kinds: BTreeMap<&str, &ResourceKind> = c.resources["g"]
            .iter()
            .map(|r| (r.name.as_str(), &r.kind))
            .collect();
        let ResourceKind::Process(process) = kinds["daemon"] else {
            panic!("{:?}", kinds["daemon"]);
        };
        assert_eq!(process.argv, ["/usr/sbin/daemon", "-f", "--port", "80"]);
        assert_eq!(process.env, [("MODE".to_owned(), "ha".to_owned())]);
        assert_eq!(process.working_dir.as_deref(), Some("/srv".as_ref()));
        // Cut to half of deadAfter, with a warning that says so.
        assert_eq!(process.stop_grace, Duration::from_millis(500));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("stopGracePeriod 10s is cut to 500ms"));
        assert_eq!(
            process.restart,
            RestartPolicy {
                limit: 1,
                period: Duration::from_secs(600)
            }
        );
        let ResourceKind::HealthCheck(on_vip) = kinds["on-vip"] else {
            panic!();
        };
        // Without a host, the probe goes to the group's VIP.
        assert_eq!(
            on_vip.probe,
            ProbePlan::Tcp {
                host: "10.0.0.50".into(),
                port: 80
            }
        );
        assert_eq!(
            on_vip.restart,
            RestartPolicy {
                limit: 2,
                period: Duration::from_secs(60)
            }
        );
        assert_eq!(
            (on_vip.interval, on_vip.timeout, on_vip.failure_threshold),
            (Duration::from_secs(1), Duration::from_millis(500), 3)
        );
        let ResourceKind::HealthCheck(local) = kinds["local"] else {
            panic!();
        };
        assert_eq!(
            local.probe,
            ProbePlan::Http {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/ready".into(),
                statuses: 200..=399
            }
        );
        assert_eq!(
            c.hooks["g"],
            HookPlan {
                argv: vec!["/bin/notify".into(), "-q".into()],
                timeout: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn converts_every_field() {
        let c = AgentConfig::from_yaml(YAML).unwrap();
        let m = &c.model;
        assert_eq!(m.cluster, "default/lab");
        assert_eq!(m.quorum, QuorumMode::Majority);
        assert_eq!(m.interval, Duration::from_millis(50));
        assert_eq!(m.dead_after, Duration::from_millis(250));
        assert_eq!(
            m.members
                .iter()
                .map(|m| (m.name.as_str(), m.priority, m.paused))
                .collect::<Vec<_>>(),
            [("n1", 200, false), ("n2", 100, false), ("n3", 50, true)]
        );
        assert_eq!(
            m.quarantine,
            Some(QuarantinePolicy {
                failures: 3,
                period: Duration::from_secs(3600),
                duration: Duration::from_secs(7200)
            })
        );
        // Groups are sorted by name.
        assert_eq!(
            m.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["db", "web"]
        );
        let db = m.group("db").unwrap();
        assert_eq!(db.owner.as_deref(), Some("n3"));
        assert!(
            matches!(db.failback, FailbackPolicy::Immediate { stabilize_for } if stabilize_for == Duration::from_secs(2))
        );
        let web = m.group("web").unwrap();
        assert_eq!(web.preferred_owners, ["n2", "n1"]);
        assert_eq!(
            web.failover_limit,
            Some(FailoverLimit {
                max: 2,
                period: Duration::from_secs(600)
            })
        );
        let FailbackPolicy::Window {
            stabilize_for,
            windows,
            time_zone,
        } = &web.failback
        else {
            panic!("expected a window policy: {:?}", web.failback);
        };
        assert_eq!(*stabilize_for, Duration::from_secs(5));
        assert_eq!(time_zone.iana_name(), Some("Europe/Berlin"));
        assert_eq!(
            windows,
            &[DailyWindow {
                start: CivilTime::constant(22, 0, 0, 0),
                end: CivilTime::constant(6, 30, 0, 0),
                days: vec![CivilWeekday::Saturday, CivilWeekday::Sunday],
            }]
        );

        assert_eq!(c.addresses["n2"], ["10.78.0.2:7800".parse().unwrap()]);
        assert_eq!(
            c.links_of("n3").unwrap(),
            ["10.78.0.3:7800".parse().unwrap()]
        );
        assert!(matches!(
            c.links_of("n9"),
            Err(ConfigError::NotAMember { .. })
        ));
        assert_eq!(
            c.vips["web"],
            [
                VirtualIp {
                    address: "10.78.0.100".parse().unwrap(),
                    prefix_len: 24,
                    interface: Some("eth0".into())
                },
                VirtualIp {
                    address: "fd78::100".parse().unwrap(),
                    prefix_len: 64,
                    interface: None
                },
            ]
        );
        assert_eq!(c.all_vips().len(), 3);
        assert_eq!(
            c.announcements,
            Announcements {
                count: 2,
                spacing: Duration::from_millis(20),
                refresh: None
            }
        );
        assert_eq!(c.vip_lifetime(), Duration::from_secs(1));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("ResourceGroup/db: spec.resources[1] (app)"));
        assert!(
            c.warnings[0].contains("NotRunInThisRelease"),
            "{:?}",
            c.warnings
        );
        let order =
            |g: &str| -> Vec<String> { c.resources[g].iter().map(|r| r.name.clone()).collect() };
        assert_eq!(order("web"), ["vip", "vip6"]);
        assert_eq!(order("db"), ["vip", "app"]);
    }

    #[test]
    fn lifetime_rounds_dead_after_up_to_whole_seconds() {
        let mut c = AgentConfig::from_yaml(YAML).unwrap();
        let mut model = (*c.model).clone();
        model.dead_after = Duration::from_millis(1500);
        c.model = Arc::new(model.clone());
        assert_eq!(c.vip_lifetime(), Duration::from_secs(2));
        model.dead_after = Duration::from_secs(3);
        c.model = Arc::new(model);
        assert_eq!(c.vip_lifetime(), Duration::from_secs(3));
    }

    #[test]
    fn hash_is_stable_and_changes_with_the_config() {
        let a = AgentConfig::from_yaml(YAML).unwrap().hash;
        assert_eq!(a, AgentConfig::from_yaml(YAML).unwrap().hash);
        // The order of the documents and the YAML style do not matter.
        let parts: Vec<&str> = YAML.split("---\n").collect();
        let reordered = format!("{}---\n{}---\n{}", parts[2], parts[0], parts[1]);
        assert_eq!(a, AgentConfig::from_yaml(&reordered).unwrap().hash);
        let restyled = YAML.replace(
            "{interval: 50ms, deadAfter: 250ms, port: 7800}",
            "\n    interval: 50ms\n    port: 7800\n    deadAfter: 250ms",
        );
        assert_ne!(restyled, YAML);
        assert_eq!(a, AgentConfig::from_yaml(&restyled).unwrap().hash);
        // Any change of the spec changes it.
        for (from, to) in [
            ("priority: 100", "priority: 101"),
            ("10.78.0.101/24", "10.78.0.102/24"),
            ("metadata: {name: db}", "metadata: {name: db2}"),
            ("deadAfter: 250ms", "deadAfter: 300ms"),
        ] {
            let changed = YAML.replace(from, to);
            assert_ne!(changed, YAML, "{from}");
            assert_ne!(
                a,
                AgentConfig::from_yaml(&changed).unwrap().hash,
                "{from} -> {to}"
            );
        }
    }

    fn two_with_witness_quorum() -> String {
        YAML.replace(
            "    - {node: n3, priority: 50, address: 10.78.0.3, paused: true}\n",
            "",
        )
        .replace("owner: n3", "owner: n2")
        .replace("heartbeat:", "quorum: witness\n  heartbeat:")
    }

    #[test]
    fn every_link_of_every_member_with_the_port() {
        let two_links = YAML
            .replace(
                "address: 10.78.0.1}",
                "address: 10.78.0.1, additionalAddresses: [192.168.9.1]}",
            )
            .replace(
                "address: 10.78.0.2}",
                "address: 10.78.0.2, additionalAddresses: [192.168.9.2]}",
            )
            .replace(
                "address: 10.78.0.3, paused: true}",
                "address: 10.78.0.3, additionalAddresses: [192.168.9.3], paused: true}",
            );
        let c = AgentConfig::from_yaml(&two_links).unwrap();
        assert_eq!(
            c.links_of("n2").unwrap(),
            [
                "10.78.0.2:7800".parse().unwrap(),
                "192.168.9.2:7800".parse().unwrap()
            ]
        );
        assert_ne!(c.hash, AgentConfig::from_yaml(YAML).unwrap().hash);
        // One member with a link fewer: refused, naming the member's field.
        let uneven = two_links.replace(", additionalAddresses: [192.168.9.2]", "");
        let err = AgentConfig::from_yaml(&uneven).unwrap_err().to_string();
        assert!(
            err.contains("spec.members: spec.members[1].additionalAddresses lists 0 addresses, but spec.members[0] lists 1"),
            "{err}"
        );
    }

    #[test]
    fn standalone_witness_quorum_needs_spec_witness() {
        let err = AgentConfig::from_yaml(&two_with_witness_quorum()).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("spec.witness"), "{err}");
        // Kubernetes mode: without spec.witness the witness is the Lease.
        let config = AgentConfig::from_cluster_yaml(&two_with_witness_quorum()).unwrap();
        assert_eq!(config.witness, None);
    }

    #[test]
    fn witness_quorum_loads_with_spec_witness_in_both_modes() {
        let with = two_with_witness_quorum().replace(
            "quorum: witness\n",
            "quorum: witness\n  witness: {address: 10.78.9.9}\n",
        );
        let config = AgentConfig::from_yaml(&with).unwrap();
        assert_eq!(config.model.quorum, QuorumMode::Witness);
        // The port defaults to the heartbeat port.
        let port = config.addresses["n1"][0].port();
        assert_eq!(
            config.witness,
            Some(SocketAddr::from(([10, 78, 9, 9], port)))
        );
        let own_port = with.replace("10.78.9.9}", "10.78.9.9, port: 9000}");
        let config = AgentConfig::from_yaml(&own_port).unwrap();
        assert_eq!(config.witness.map(|a| a.port()), Some(9000));
        // In Kubernetes the field names the witness too (instead of the Lease).
        let config = AgentConfig::from_cluster_yaml(&with).unwrap();
        assert_eq!(
            config.witness,
            Some(SocketAddr::from(([10, 78, 9, 9], port)))
        );
        // Without witness quorum the field means nothing: refused in both modes.
        let majority = YAML.replace("heartbeat:", "witness: {address: 10.78.9.9}\n  heartbeat:");
        let err = AgentConfig::from_yaml(&majority).unwrap_err();
        assert!(err.to_string().contains("spec.witness"), "{err}");
        let err = AgentConfig::from_cluster_yaml(&majority).unwrap_err();
        assert!(err.to_string().contains("spec.witness"), "{err}");
    }

    #[test]
    fn refuses_invalid_config_listing_every_problem() {
        let bad = YAML
            .replace("address: 10.78.0.2}", "}")
            .replace("deadAfter: 250ms", "deadAfter: 10ms")
            .replace("preferredOwners: [n2, n1]", "preferredOwners: [n2, n7]");
        let err = AgentConfig::from_yaml(&bad).unwrap_err();
        let ConfigError::Invalid(invalid) = &err else {
            panic!("expected invalid config: {err}");
        };
        let text = err.to_string();
        assert!(invalid.problems.len() >= 3, "{text}");
        for field in [
            "spec.members[1].address",
            "spec.heartbeat.deadAfter",
            "spec.preferredOwners[1]",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
    }

    #[test]
    fn unknown_time_zone_names_the_field() {
        let bad = YAML.replace("Europe/Berlin", "Mars/Olympus_Mons");
        let err = AgentConfig::from_yaml(&bad).unwrap_err();
        assert!(matches!(err, ConfigError::TimeZone { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "ResourceGroup/web: spec.failback.timeZone: unknown time zone \"Mars/Olympus_Mons\""
        );
    }

    #[test]
    fn load_errors_are_reported() {
        assert!(matches!(
            AgentConfig::from_yaml("a: [\n"),
            Err(ConfigError::Load(_))
        ));
    }
}
