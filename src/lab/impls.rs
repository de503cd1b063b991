//! The implementations the benchmark compares, behind one interface: write the
//! configuration for the lab's topology, start a member in its node namespace,
//! pause a member. `keepalived` works today; `failover` is our agent, started as
//! `failover agent --standalone FILE --node nX` and reported unavailable until that
//! subcommand exists.
//!
//! Owns: config rendering (pure, tested) and the command lines. Must never: pretend
//! an implementation ran when it is unavailable.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::LabError;
use super::topology::{IFACE, Lab, node_v4, run};

/// The cluster name of every lab config; a witness serves `default/lab`.
const CLUSTER: &str = "lab";

/// The VIP every implementation manages.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
/// Its prefix length on the lab subnet.
pub const VIP_PREFIX: u8 = 24;
/// VRRP router id keepalived uses in the lab.
const VRID: u8 = 77;

/// Priority of member `i` (1-based): 200 / 100 / 50, then decreasing.
pub fn priority(i: usize) -> u8 {
    match i {
        1 => 200,
        2 => 100,
        _ => 50u8
            .saturating_sub(u8::try_from(i - 3).unwrap_or(u8::MAX))
            .max(1),
    }
}

/// Our agent's heartbeat timing for the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverTiming {
    pub interval_ms: u64,
    pub dead_after_ms: u64,
    pub port: u16,
    /// Run the agents with this SCHED_RR real-time priority (`chrt --rr`), as
    /// heartbeat daemons such as corosync do, so that a busy machine cannot starve
    /// them into false failovers at millisecond timings.
    pub realtime_priority: Option<u8>,
}

impl Default for FailoverTiming {
    fn default() -> Self {
        FailoverTiming {
            interval_ms: 200,
            dead_after_ms: 1000,
            port: 7946,
            realtime_priority: None,
        }
    }
}

/// An implementation under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Impl {
    /// keepalived with VRRP unicast between the members; `advert` in seconds as
    /// keepalived spells it ("1", "0.01").
    Keepalived { advert: String },
    /// Our agent; `extra_args` are appended to its command line (e.g. a key file).
    Failover {
        timing: FailoverTiming,
        extra_args: Vec<String>,
    },
}

impl Impl {
    /// Parses `failover`, `keepalived` (= advert 1) or `keepalived-advert<seconds>`.
    pub fn parse(
        name: &str,
        timing: FailoverTiming,
        extra_args: Vec<String>,
    ) -> Result<Impl, LabError> {
        let bad = |detail: &str| LabError::Invalid {
            what: format!("implementation {name:?}"),
            detail: detail.to_string(),
        };
        match name {
            "failover" => Ok(Impl::Failover { timing, extra_args }),
            "keepalived" => Ok(Impl::Keepalived { advert: "1".into() }),
            _ => {
                let advert = name.strip_prefix("keepalived-advert").ok_or_else(|| {
                    bad("expected failover, keepalived or keepalived-advert<seconds>")
                })?;
                let secs: f64 = advert
                    .parse()
                    .map_err(|_| bad("advert interval is not a number"))?;
                // keepalived's range: 0.01 s (VRRPv3 centiseconds) to 255 s.
                if !(0.01..=255.0).contains(&secs) {
                    return Err(bad("advert interval must be within 0.01..=255 s"));
                }
                Ok(Impl::Keepalived {
                    advert: advert.to_string(),
                })
            }
        }
    }

    /// The name printed in the benchmark line.
    pub fn name(&self) -> String {
        match self {
            Impl::Keepalived { advert } => format!("keepalived-advert{advert}"),
            Impl::Failover { .. } => "failover".to_string(),
        }
    }

    /// Checks that the implementation can run here; the error says why not.
    pub fn check_available(&self, exe: &Path) -> Result<(), LabError> {
        let unavailable = |reason: String| LabError::Unavailable {
            name: self.name(),
            reason,
        };
        match self {
            Impl::Keepalived { .. } => run("keepalived", &["--version".to_string()])
                .map(|_| ())
                .map_err(|e| unavailable(format!("{e} (apt-get install -y keepalived)"))),
            Impl::Failover { .. } => {
                let exe_s = exe.display().to_string();
                run(&exe_s, &["agent".to_string(), "--help".to_string()])
                    .map(|_| ())
                    .map_err(|_| {
                        unavailable(format!(
                            "`{exe_s} agent --help` fails: the agent subcommand does not exist in this build yet"
                        ))
                    })
            }
        }
    }

    /// How long a failover may take before the run counts it as not recovered.
    pub fn window(&self) -> Duration {
        match self {
            Impl::Keepalived { advert } => {
                // Master down interval is 3 adverts plus skew; allow that three times
                // over, and at least a second for process start and gratuitous ARP.
                let secs: f64 = advert.parse().unwrap_or(1.0);
                Duration::from_secs_f64((secs * 9.0).max(1.5) + 1.0)
            }
            Impl::Failover { timing, .. } => {
                Duration::from_millis(timing.dead_after_ms * 3 + timing.interval_ms * 3 + 1000)
            }
        }
    }

    /// The implementation's own period (advert or heartbeat interval). The fault is
    /// injected at a random phase within it: otherwise every run would hit the same
    /// point of the advert cycle (the lab starts in lock-step with the election) and
    /// the outage would be biased instead of sampled.
    pub fn period(&self) -> Duration {
        match self {
            Impl::Keepalived { advert } => {
                Duration::from_secs_f64(advert.parse::<f64>().unwrap_or(1.0).clamp(0.01, 255.0))
            }
            Impl::Failover { timing, .. } => Duration::from_millis(timing.interval_ms.max(1)),
        }
    }

    /// Why the scenario does not apply to this implementation, if it does not.
    pub fn unsupported(&self, scenario: super::bench::Scenario) -> Option<&'static str> {
        use super::bench::Scenario;
        match (self, scenario) {
            (Impl::Failover { .. }, _) => None,
            (
                Impl::Keepalived { .. },
                Scenario::PausedMember | Scenario::ServiceFailure | Scenario::ServiceOrder,
            ) => Some("VRRP has no paused members and runs no service of ours"),
            (Impl::Keepalived { .. }, Scenario::WitnessKillOwner | Scenario::WitnessPartition) => {
                Some("VRRP has no witness: a two-router pair has no tie-breaker")
            }
            (Impl::Keepalived { .. }, Scenario::LinkCutOne | Scenario::LinkCutBoth) => {
                Some("a VRRP instance sends its adverts over one interface only")
            }
            (Impl::Keepalived { .. }, _) => None,
        }
    }

    /// How long after its start `failover witness` grants nothing: the longest hold
    /// the members ask for, `deadAfter` rounded up to whole seconds.
    pub fn witness_hold(&self) -> Duration {
        match self {
            Impl::Failover { timing, .. } => {
                Duration::from_secs(timing.dead_after_ms.div_ceil(1000).max(1))
            }
            Impl::Keepalived { .. } => Duration::ZERO,
        }
    }

    /// Starts `failover witness` for the lab cluster in the lab's witness namespace,
    /// with the members' key; returns its process id. Our agent only.
    pub fn start_witness(&self, lab: &mut Lab, dir: &Path, exe: &Path) -> Result<u32, LabError> {
        let (Impl::Failover { timing, .. }, Some(ns), Some(address)) =
            (self, lab.witness_ns(), lab.witness_v4())
        else {
            return Err(LabError::Invalid {
                what: "scenario".into(),
                detail: format!("{} runs no witness in this lab", self.name()),
            });
        };
        let args = vec![
            "witness".to_string(),
            "--listen".into(),
            format!("{address}:{}", timing.port),
            "--cluster".into(),
            format!("default/{CLUSTER}"),
            "--key-file".into(),
            key_path(dir).display().to_string(),
            "--log-format".into(),
            "json".into(),
        ];
        lab.spawn(&ns, exe, &args, Some(&witness_log_path(dir)))
    }

    /// Writes the configuration for all members of `lab` into `dir`; `paused` lists
    /// members marked paused (our agent only).
    pub fn write_config(&self, dir: &Path, lab: &Lab, paused: &[usize]) -> Result<(), LabError> {
        self.write_config_groups(dir, lab, paused, 1)
    }

    /// Like `write_config`, with `groups` resource groups (see [`failover_yaml_groups`];
    /// keepalived manages the one VIP only, so it takes 1 group).
    pub fn write_config_groups(
        &self,
        dir: &Path,
        lab: &Lab,
        paused: &[usize],
        groups: usize,
    ) -> Result<(), LabError> {
        let write = |path: PathBuf, text: String| write_atomically(&path, &text);
        match self {
            Impl::Keepalived { advert } => {
                if groups != 1 {
                    return Err(LabError::Invalid {
                        what: "scenario".into(),
                        detail: "keepalived is configured with one VIP".into(),
                    });
                }
                if !paused.is_empty() {
                    return Err(LabError::Invalid {
                        what: "scenario".into(),
                        detail: "keepalived has no paused members".into(),
                    });
                }
                for i in 1..=lab.nodes() {
                    write(
                        keepalived_path(dir, i),
                        keepalived_conf(i, lab.nodes(), advert),
                    )?;
                }
                Ok(())
            }
            Impl::Failover { timing, .. } => {
                // One heartbeat key for the cluster, as an admin would distribute it;
                // kept across rewrites of the config (a paused member is a reload).
                let key = key_path(dir);
                if !key.exists() {
                    write(key, random_key_hex()?)?;
                }
                write(
                    failover_path(dir),
                    render_failover_yaml(
                        &ClusterAddresses::of(lab),
                        timing,
                        paused,
                        groups,
                        Shape::Plain,
                    ),
                )
            }
        }
    }

    /// Writes the service scenarios' configuration ([`ServiceGroup`]) for all
    /// members of `lab` into `dir` (our agent only).
    pub fn write_service_config(
        &self,
        dir: &Path,
        lab: &Lab,
        service: &ServiceGroup,
    ) -> Result<(), LabError> {
        match self {
            Impl::Keepalived { .. } => Err(LabError::Invalid {
                what: "scenario".into(),
                detail: "keepalived runs no service of ours".into(),
            }),
            Impl::Failover { timing, .. } => {
                // The key comes with the ordinary configuration.
                self.write_config(dir, lab, &[])?;
                write_atomically(
                    &failover_path(dir),
                    &failover_yaml_service(&ClusterAddresses::of(lab), timing, service),
                )
            }
        }
    }

    /// The log file of member `i` in the run directory (a restart starts it anew).
    pub fn log_path(&self, dir: &Path, i: usize) -> PathBuf {
        dir.join(format!("{}-n{i}.log", self.name()))
    }

    /// Starts member `i` in its namespace; returns the main process id.
    pub fn start(&self, lab: &mut Lab, i: usize, dir: &Path, exe: &Path) -> Result<u32, LabError> {
        let ns = lab.node_ns(i);
        let log = self.log_path(dir, i);
        let s = |p: PathBuf| p.display().to_string();
        match self {
            Impl::Keepalived { .. } => {
                let args = vec![
                    "--dont-fork".into(),
                    "--log-console".into(),
                    "--log-detail".into(),
                    "--no-syslog".into(),
                    "--vrrp".into(),
                    "--use-file".into(),
                    s(keepalived_path(dir, i)),
                    "--pid".into(),
                    s(dir.join(format!("keepalived-n{i}.pid"))),
                    "--vrrp_pid".into(),
                    s(dir.join(format!("keepalived-vrrp-n{i}.pid"))),
                ];
                lab.spawn(&ns, Path::new("keepalived"), &args, Some(&log))
            }
            Impl::Failover { extra_args, timing } => {
                let mut args = agent_args(dir, &format!("n{i}"));
                args.extend(extra_args.iter().cloned());
                match timing.realtime_priority {
                    // chrt execs the agent: the pid stays the agent's.
                    Some(priority) => {
                        let mut chrt = vec![
                            "--rr".to_string(),
                            priority.to_string(),
                            s(exe.to_path_buf()),
                        ];
                        chrt.extend(args);
                        lab.spawn(&ns, Path::new("chrt"), &chrt, Some(&log))
                    }
                    None => lab.spawn(&ns, exe, &args, Some(&log)),
                }
            }
        }
    }
}

/// Writes `text` to `path` through a temporary file and a rename: an agent watching
/// the file never reads half of it.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), LabError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| LabError::io(path.display().to_string(), e))
}

/// The command line of our agent in the lab — the one place to adapt when the
/// agent's flags settle.
pub fn agent_args(dir: &Path, node: &str) -> Vec<String> {
    vec![
        "agent".into(),
        "--standalone".into(),
        failover_path(dir).display().to_string(),
        "--node".into(),
        node.into(),
        "--key-file".into(),
        key_path(dir).display().to_string(),
        "--log-format".into(),
        "json".into(),
    ]
}

/// The witness's log file in the run directory.
pub fn witness_log_path(dir: &Path) -> PathBuf {
    dir.join("witness.log")
}

/// Path of the cluster's heartbeat key in the run directory.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("failover.key")
}

/// 32 random bytes from the kernel, hex-encoded (the agent takes the file's bytes).
fn random_key_hex() -> Result<String, LabError> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| LabError::io("/dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn keepalived_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("keepalived-n{i}.conf"))
}

/// Path of our agent's YAML in the run directory.
pub fn failover_path(dir: &Path) -> PathBuf {
    dir.join("failover.yaml")
}

/// keepalived.conf for member `i` of `nodes`: VRRP unicast to the other members,
/// priorities 200/100/50, preemption on (its default), the VIP on the lab interface.
pub fn keepalived_conf(i: usize, nodes: usize, advert: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "global_defs {{");
    let _ = writeln!(s, "    router_id fo_lab_n{i}");
    // Sub-second adverts exist only in VRRPv3 (centisecond units).
    if advert.parse::<f64>().is_ok_and(|a| a < 1.0) {
        let _ = writeln!(s, "    vrrp_version 3");
    }
    let _ = writeln!(s, "}}");
    let _ = writeln!(s, "vrrp_instance fo_lab {{");
    let _ = writeln!(s, "    state BACKUP");
    let _ = writeln!(s, "    interface {IFACE}");
    let _ = writeln!(s, "    virtual_router_id {VRID}");
    let _ = writeln!(s, "    priority {}", priority(i));
    let _ = writeln!(s, "    advert_int {advert}");
    let _ = writeln!(s, "    unicast_src_ip {}", node_v4(i));
    let _ = writeln!(s, "    unicast_peer {{");
    for j in (1..=nodes).filter(|j| *j != i) {
        let _ = writeln!(s, "        {}", node_v4(j));
    }
    let _ = writeln!(s, "    }}");
    let _ = writeln!(s, "    virtual_ipaddress {{");
    let _ = writeln!(s, "        {VIP}/{VIP_PREFIX} dev {IFACE}");
    let _ = writeln!(s, "    }}");
    let _ = writeln!(s, "}}");
    s
}

/// The standalone YAML for our agent: a FailoverCluster with the lab's members
/// (priorities 200/100/50, heartbeat addresses) and one ResourceGroup holding the VIP
/// with immediate failback. Field names follow DESIGN.md section 3.
pub fn failover_yaml(nodes: usize, timing: &FailoverTiming, paused: &[usize]) -> String {
    failover_yaml_groups(nodes, timing, paused, 1)
}

/// Most groups a lab config may have: their VIPs 10.77.0.100.. stay below .255.
pub const MAX_GROUPS: usize = 150;

/// The VIP of group `k` (1-based) of a multi-group lab: 10.77.0.(99+k); group 1's is [`VIP`].
pub fn group_vip(k: usize) -> Ipv4Addr {
    let [a, b, c, d] = VIP.octets();
    Ipv4Addr::new(a, b, c, d.saturating_add(k.clamp(1, MAX_GROUPS) as u8 - 1))
}

/// Name of group `k` (1-based) of a multi-group lab (`vip` when there is one group).
pub fn group_name(k: usize, groups: usize) -> String {
    if groups <= 1 {
        "vip".to_string()
    } else {
        format!("g{k}")
    }
}

/// Failovers per hour a multi-group lab group may make: in effect no limit.
const NO_FAILOVER_LIMIT: u32 = 1_000_000;

/// `failover_yaml` with `groups` ResourceGroups (at most [`MAX_GROUPS`]). One group is
/// the single-VIP config above. Several are named `g1..` with VIPs [`group_vip`], and
/// group k prefers the members in turn from n((k-1) mod nodes + 1), so the groups
/// spread over the members and a fault of any member moves some of them. Several
/// groups are the torture's and the soak's config, so flap protection is off
/// (quarantine failures 0, a failover limit of a million per hour): every fault's
/// failover happens, and after any history each group belongs to its first
/// preferred member once all members are up.
pub fn failover_yaml_groups(
    nodes: usize,
    timing: &FailoverTiming,
    paused: &[usize],
    groups: usize,
) -> String {
    render_failover_yaml(
        &ClusterAddresses::service_network(nodes),
        timing,
        paused,
        groups,
        Shape::Plain,
    )
}

/// The failover-limit scenario's group policy: at most `max_failovers` per hour,
/// failback `Never` (so that restarting a killed member moves nothing and every
/// failover the scenario counts is one it caused), and the group's
/// `failover.dev/clear-failures` annotation when `clear_failures` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitPolicy {
    pub max_failovers: u32,
    pub clear_failures: Option<String>,
}

/// The one-group lab config (`vip`) under `policy`.
pub fn failover_yaml_limited(
    nodes: usize,
    timing: &FailoverTiming,
    policy: &LimitPolicy,
) -> String {
    render_failover_yaml(
        &ClusterAddresses::service_network(nodes),
        timing,
        &[],
        1,
        Shape::Limited(policy),
    )
}

/// The service scenarios' group: the lab echo run by the owner's agent as a
/// `process` resource (`service`), the VIP on top of it (`vip`, dependsOn
/// `service`), and an HTTP health check of the service on the VIP (`check`,
/// dependsOn `service`). The service on node `nK` starts broken while the file
/// `broken_marker(dir, K)` exists. Process and check may each be restarted once in
/// place; failback is `Never`, so a broken member is left once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGroup {
    /// The `failover` binary (its `lab echo`).
    pub exe: PathBuf,
    /// Where the broken markers go.
    pub dir: PathBuf,
    /// The echo's UDP port (probes) and TCP port (health checks).
    pub port: u16,
    pub http_port: u16,
    /// The echo's own deadline.
    pub max: Duration,
}

/// The file that makes the service of member `i` start broken.
pub fn broken_marker(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("broken-n{i}"))
}

/// Health-check timing of the service group: a failure is seen within ~0.3 s.
pub const SERVICE_CHECK_INTERVAL_MS: u64 = 100;

/// The one-group lab config whose group runs `service`, the members heartbeating
/// from `members`.
pub fn failover_yaml_service(
    members: &ClusterAddresses,
    timing: &FailoverTiming,
    service: &ServiceGroup,
) -> String {
    render_failover_yaml(members, timing, &[], 1, Shape::Service(service))
}

/// Where the members of a lab cluster heartbeat from, and the witness they ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAddresses {
    /// Per member (n1 first): its heartbeat addresses, link 0 (`address`) first,
    /// then `additionalAddresses`.
    pub links: Vec<Vec<Ipv4Addr>>,
    /// `quorum: witness` asking `failover witness` here; `None`: `quorum: majority`.
    pub witness: Option<Ipv4Addr>,
}

impl ClusterAddresses {
    /// The members of `lab` on its heartbeat links, with its witness if it has one.
    pub fn of(lab: &Lab) -> Self {
        ClusterAddresses {
            links: (1..=lab.nodes()).map(|i| lab.heartbeat_links(i)).collect(),
            witness: lab.witness_v4(),
        }
    }

    /// `nodes` members on the service network, majority quorum.
    pub fn service_network(nodes: usize) -> Self {
        ClusterAddresses {
            links: (1..=nodes).map(|i| vec![node_v4(i)]).collect(),
            witness: None,
        }
    }
}

/// What the groups of a lab config run and how they fail over.
#[derive(Clone, Copy)]
enum Shape<'a> {
    /// A VIP, failback `Immediate` (several groups: no failover limit).
    Plain,
    /// A VIP under a failover limit, failback `Never`.
    Limited(&'a LimitPolicy),
    /// A service, its VIP and its health check, failback `Never`.
    Service(&'a ServiceGroup),
}

fn render_failover_yaml(
    members: &ClusterAddresses,
    timing: &FailoverTiming,
    paused: &[usize],
    groups: usize,
    shape: Shape<'_>,
) -> String {
    let groups = groups.clamp(1, MAX_GROUPS);
    let mut s = String::new();
    let _ = writeln!(s, "apiVersion: failover.dev/v1alpha1");
    let _ = writeln!(s, "kind: FailoverCluster");
    let _ = writeln!(s, "metadata:\n  name: {CLUSTER}");
    let _ = writeln!(s, "spec:\n  members:");
    let nodes = members.links.len();
    for (i, links) in (1..).zip(&members.links) {
        let _ = writeln!(s, "    - node: n{i}");
        let _ = writeln!(s, "      priority: {}", priority(i));
        if let Some((address, additional)) = links.split_first() {
            let _ = writeln!(s, "      address: {address}");
            if !additional.is_empty() {
                let list: Vec<String> = additional.iter().map(Ipv4Addr::to_string).collect();
                let _ = writeln!(s, "      additionalAddresses: [{}]", list.join(", "));
            }
        }
        if paused.contains(&i) {
            let _ = writeln!(s, "      paused: true");
        }
    }
    let _ = writeln!(s, "  heartbeat:");
    let _ = writeln!(s, "    interval: {}ms", timing.interval_ms);
    let _ = writeln!(s, "    deadAfter: {}ms", timing.dead_after_ms);
    let _ = writeln!(s, "    port: {}", timing.port);
    match members.witness {
        Some(witness) => {
            let _ = writeln!(s, "  quorum: witness\n  witness:\n    address: {witness}");
        }
        None => {
            let _ = writeln!(s, "  quorum: majority");
        }
    }
    if groups > 1 {
        let _ = writeln!(s, "  quarantine:\n    failures: 0");
    }
    for k in 1..=groups {
        let _ = writeln!(s, "---");
        let _ = writeln!(s, "apiVersion: failover.dev/v1alpha1");
        let _ = writeln!(s, "kind: ResourceGroup");
        let _ = writeln!(s, "metadata:\n  name: {}", group_name(k, groups));
        if let Shape::Limited(LimitPolicy {
            clear_failures: Some(value),
            ..
        }) = shape
        {
            let _ = writeln!(
                s,
                "  annotations:\n    failover.dev/clear-failures: \"{value}\""
            );
        }
        let _ = writeln!(s, "spec:\n  cluster: {CLUSTER}");
        if groups > 1 {
            let _ = writeln!(
                s,
                "  failoverLimit:\n    maxFailovers: {NO_FAILOVER_LIMIT}\n    period: 1h"
            );
            let _ = writeln!(s, "  preferredOwners:");
            for j in 0..nodes {
                let _ = writeln!(s, "    - n{}", (k - 1 + j) % nodes + 1);
            }
        }
        match shape {
            Shape::Limited(policy) => {
                let _ = writeln!(
                    s,
                    "  failoverLimit:\n    maxFailovers: {}\n    period: 1h",
                    policy.max_failovers
                );
                let _ = writeln!(s, "  failback:\n    policy: Never");
            }
            Shape::Service(_) => {
                let _ = writeln!(s, "  failback:\n    policy: Never");
            }
            Shape::Plain => {
                let _ = writeln!(
                    s,
                    "  failback:\n    policy: Immediate\n    stabilizeFor: 0s"
                );
            }
        }
        let _ = writeln!(s, "  resources:");
        if let Shape::Service(service) = shape {
            // One file for every member: the node's name and marker come from the
            // FAILOVER_NODE the agent gives its processes.
            let script = format!(
                "exec {} lab echo --port {} --http-port {} --name \"$FAILOVER_NODE\" --duration-ms {} --broken-if {}/broken-\"$FAILOVER_NODE\"",
                service.exe.display(),
                service.port,
                service.http_port,
                service.max.as_millis(),
                service.dir.display(),
            );
            let _ = writeln!(s, "    - name: service");
            let _ = writeln!(s, "      process:");
            let _ = writeln!(s, "        command: [sh, -c, {}]", yaml_quoted(&script));
            let _ = writeln!(s, "        restartLimit: 1");
        }
        let _ = writeln!(s, "    - name: vip");
        if matches!(shape, Shape::Service(_)) {
            let _ = writeln!(s, "      dependsOn: [service]");
        }
        let _ = writeln!(s, "      virtualIP:");
        let _ = writeln!(s, "        address: {}/{VIP_PREFIX}", group_vip(k));
        let _ = writeln!(s, "        interface: {IFACE}");
        if let Shape::Service(service) = shape {
            let _ = writeln!(s, "    - name: check");
            let _ = writeln!(s, "      dependsOn: [service]");
            let _ = writeln!(s, "      healthCheck:");
            let _ = writeln!(s, "        http: {{port: {}, path: /}}", service.http_port);
            let _ = writeln!(s, "        interval: {SERVICE_CHECK_INTERVAL_MS}ms");
            let _ = writeln!(s, "        timeout: {SERVICE_CHECK_INTERVAL_MS}ms");
            let _ = writeln!(s, "        failureThreshold: 2");
            let _ = writeln!(s, "        restartLimit: 1");
        }
    }
    s
}

/// `text` as a YAML double-quoted scalar.
fn yaml_quoted(text: &str) -> String {
    // JSON strings are YAML double-quoted scalars.
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::{WITNESS_V4, node_link_v4};

    #[test]
    fn priorities() {
        assert_eq!((priority(1), priority(2), priority(3)), (200, 100, 50));
        assert_eq!(priority(4), 49);
        assert_eq!(priority(500), 1);
    }

    #[test]
    fn parses_names() {
        let t = FailoverTiming::default();
        assert_eq!(
            Impl::parse("keepalived", t.clone(), vec![]).unwrap().name(),
            "keepalived-advert1"
        );
        assert_eq!(
            Impl::parse("keepalived-advert0.01", t.clone(), vec![])
                .unwrap()
                .name(),
            "keepalived-advert0.01"
        );
        assert_eq!(
            Impl::parse("failover", t.clone(), vec![]).unwrap().name(),
            "failover"
        );
        for bad in [
            "ucarp",
            "keepalived-advertx",
            "keepalived-advert0.001",
            "keepalived-advert300",
        ] {
            assert!(Impl::parse(bad, t.clone(), vec![]).is_err(), "{bad}");
        }
    }

    #[test]
    fn keepalived_conf_unicast_to_the_others() {
        let c = keepalived_conf(2, 3, "0.01");
        assert!(c.contains("vrrp_version 3"));
        assert!(c.contains("priority 100"));
        assert!(c.contains("advert_int 0.01"));
        assert!(c.contains("unicast_src_ip 10.77.0.12"));
        assert!(c.contains("        10.77.0.11\n        10.77.0.13\n"));
        assert!(!c.contains("        10.77.0.12\n"));
        assert!(c.contains("10.77.0.100/24 dev eth0"));
        assert!(!keepalived_conf(1, 3, "1").contains("vrrp_version"));
    }

    #[test]
    fn failover_yaml_is_a_valid_standalone_config() {
        for paused in [&[][..], &[2][..]] {
            let y = failover_yaml(3, &FailoverTiming::default(), paused);
            let (cluster, groups) = crate::api::load_documents(&y).unwrap();
            let mut problems = crate::api::validate_config(&cluster, &groups);
            problems.extend(crate::api::validate_standalone(&cluster));
            assert!(problems.is_empty(), "{problems:?}");
        }
    }

    #[test]
    fn failover_yaml_is_two_documents_with_the_members() {
        let y = failover_yaml(3, &FailoverTiming::default(), &[1]);
        let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&y)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        let members = docs[0]["spec"]["members"].as_sequence().unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(members[0]["address"].as_str(), Some("10.77.0.11"));
        assert_eq!(members[2]["priority"].as_u64(), Some(50));
        assert_eq!(members[0]["paused"].as_bool(), Some(true));
        assert!(members[1].get("paused").is_none());
        assert_eq!(
            docs[0]["spec"]["heartbeat"]["interval"].as_str(),
            Some("200ms")
        );
        assert_eq!(
            docs[0]["spec"]["heartbeat"]["deadAfter"].as_str(),
            Some("1000ms")
        );
        assert_eq!(docs[0]["spec"]["heartbeat"]["port"].as_u64(), Some(7946));
        assert_eq!(docs[1]["kind"].as_str(), Some("ResourceGroup"));
        assert_eq!(
            docs[1]["spec"]["resources"][0]["virtualIP"]["address"].as_str(),
            Some("10.77.0.100/24")
        );
    }

    #[test]
    fn a_witness_pair_on_two_links_is_a_valid_standalone_config() {
        let members = ClusterAddresses {
            links: (1..=2).map(|i| vec![node_v4(i), node_link_v4(i)]).collect(),
            witness: Some(WITNESS_V4),
        };
        let y = render_failover_yaml(&members, &FailoverTiming::default(), &[], 1, Shape::Plain);
        let (cluster, groups) = crate::api::load_documents(&y).unwrap();
        let mut problems = crate::api::validate_config(&cluster, &groups);
        problems.extend(crate::api::validate_standalone(&cluster));
        assert!(problems.is_empty(), "{problems:?}\n{y}");
        assert!(y.contains("      address: 10.77.0.12\n      additionalAddresses: [10.78.0.12]\n"));
        assert!(y.contains("  quorum: witness\n  witness:\n    address: 10.77.0.5\n"));
        assert!(!y.contains("majority"));
        let plain = failover_yaml(3, &FailoverTiming::default(), &[]);
        assert!(!plain.contains("additionalAddresses") && plain.contains("quorum: majority"));
    }

    #[test]
    fn several_groups_spread_over_the_members_and_validate() {
        let y = failover_yaml_groups(9, &FailoverTiming::default(), &[], 20);
        let (cluster, groups) = crate::api::load_documents(&y).unwrap();
        let mut problems = crate::api::validate_config(&cluster, &groups);
        problems.extend(crate::api::validate_standalone(&cluster));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(groups.len(), 20);
        assert_eq!(groups[0].spec.preferred_owners[0], "n1");
        assert_eq!(groups[10].spec.preferred_owners[..2], ["n2", "n3"]);
        assert!(y.contains("address: 10.77.0.119/24"));
        assert_eq!(cluster.spec.quarantine.failures, 0);
        assert_eq!(
            groups[3].spec.failover_limit.max_failovers,
            NO_FAILOVER_LIMIT
        );
        assert_eq!(group_vip(1), VIP);
        assert_eq!(group_name(3, 3), "g3");
        assert_eq!(
            failover_yaml_groups(3, &FailoverTiming::default(), &[], 1),
            failover_yaml(3, &FailoverTiming::default(), &[])
        );
    }

    #[test]
    fn limited_group_has_its_limit_no_failback_and_the_clear_annotation() {
        let policy = LimitPolicy {
            max_failovers: 1,
            clear_failures: Some("17".into()),
        };
        let y = failover_yaml_limited(3, &FailoverTiming::default(), &policy);
        let (cluster, groups) = crate::api::load_documents(&y).unwrap();
        let mut problems = crate::api::validate_config(&cluster, &groups);
        problems.extend(crate::api::validate_standalone(&cluster));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(groups[0].spec.failover_limit.max_failovers, 1);
        assert!(y.contains("policy: Never"));
        assert!(y.contains("failover.dev/clear-failures: \"17\""));
        let uncleared = failover_yaml_limited(
            3,
            &FailoverTiming::default(),
            &LimitPolicy {
                clear_failures: None,
                ..policy
            },
        );
        assert!(!uncleared.contains("clear-failures"));
    }

    #[test]
    fn keepalived_has_no_witness_and_one_advert_link() {
        use crate::lab::bench::Scenario;
        let t = FailoverTiming::default();
        let ours = Impl::parse("failover", t.clone(), vec![]).unwrap();
        let vrrp = Impl::parse("keepalived", t, vec![]).unwrap();
        for s in Scenario::ALL {
            assert_eq!(ours.unsupported(s), None, "{s:?}");
        }
        for s in [
            Scenario::WitnessKillOwner,
            Scenario::WitnessPartition,
            Scenario::LinkCutOne,
            Scenario::LinkCutBoth,
            Scenario::PausedMember,
        ] {
            assert!(vrrp.unsupported(s).is_some(), "{s:?}");
        }
        assert_eq!(vrrp.unsupported(Scenario::KillOwner), None);
        assert_eq!(ours.witness_hold(), Duration::from_secs(1));
    }

    #[test]
    fn windows_scale_with_timing() {
        let t = FailoverTiming::default();
        let k1 = Impl::parse("keepalived", t.clone(), vec![])
            .unwrap()
            .window();
        let k001 = Impl::parse("keepalived-advert0.01", t.clone(), vec![])
            .unwrap()
            .window();
        assert!(k1 > k001);
        assert!(k1 >= Duration::from_secs(9));
        let f = Impl::parse("failover", t.clone(), vec![]).unwrap().window();
        assert!(f >= Duration::from_secs(3));
        assert_eq!(
            Impl::parse("keepalived-advert0.01", t.clone(), vec![])
                .unwrap()
                .period(),
            Duration::from_millis(10)
        );
        assert_eq!(
            Impl::parse("failover", t, vec![]).unwrap().period(),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn agent_command_line() {
        assert_eq!(
            agent_args(Path::new("/tmp/run"), "n2"),
            vec![
                "agent",
                "--standalone",
                "/tmp/run/failover.yaml",
                "--node",
                "n2",
                "--key-file",
                "/tmp/run/failover.key",
                "--log-format",
                "json"
            ]
        );
    }
}
