//! Validation of FailoverCluster and ResourceGroup specs in Rust.
//!
//! Owns every rule the CRD schema and CEL rules enforce (so the standalone agent,
//! which has no API server, gets the same protection; the syntax of durations is
//! the type's, checked when the object is deserialized) plus what only a view of
//! several objects can see: dependency cycles, unknown `dependsOn` targets,
//! preferred owners that are not members, the same VIP in two groups of one cluster.
//! It reports every problem at once, each with its field path, and must never stop
//! at the first problem, panic on odd input, or do IO.

use std::collections::btree_map::Entry as BTreeEntry;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use kube::{Resource, ResourceExt};

use super::cluster::{
    FailoverCluster, MAX_ADDITIONAL_ADDRESSES, MAX_PRIORITY, MIN_INTERVAL, MemberSpec, QuorumMode,
};
use super::group::{
    FailbackPolicy, FailbackSpec, HealthCheckSpec, HookSpec, MAX_RESOURCES, ProcessSpec,
    ResourceGroup, ResourceSpec, parse_time_of_day,
};

/// Most members in a cluster.
pub const MAX_MEMBERS: usize = 64;

/// One problem: which object, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `Kind/name` of the object, e.g. `ResourceGroup/web`.
    pub object: String,
    /// Field path in the object, e.g. `spec.resources[2].dependsOn[0]`.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.object, self.path, self.message)
    }
}

/// Every problem found in a configuration, as one error for `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration ({} problem(s)):{}", .problems.len(), list(.problems))]
pub struct InvalidConfig {
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// Turns a list of problems into a `Result`: `Ok` when there are none.
pub fn into_result(problems: Vec<Problem>) -> Result<(), InvalidConfig> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidConfig { problems })
    }
}

/// Collects problems for one object.
struct Report<'a> {
    object: String,
    problems: &'a mut Vec<Problem>,
}

impl Report<'_> {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            object: self.object.clone(),
            path: path.into(),
            message: message.into(),
        });
    }
}

/// `Kind/name`, or `Kind/namespace/name` when the object has a namespace.
fn object_name<K: Resource<DynamicType = ()>>(object: &K) -> String {
    let kind = K::kind(&());
    match object.meta().namespace.as_deref() {
        Some(ns) => format!("{kind}/{ns}/{}", object.name_any()),
        None => format!("{kind}/{}", object.name_any()),
    }
}

/// Longest FailoverCluster or ResourceGroup name: the name is the value of the
/// `failover.dev/cluster` (or `failover.dev/group`) label of the objects rendered for
/// it, and a label value has at most 63 characters (the CRDs' CEL rules say the same).
pub const MAX_NAME_LEN: usize = 63;

/// Longest name of a Kubernetes object (a DNS-1123 subdomain).
const MAX_OBJECT_NAME_LEN: usize = 253;

/// Reports a missing `metadata.name` (possible in a hand-written standalone file)
/// and one too long to be a label value.
fn check_name<K: Resource>(r: &mut Report<'_>, object: &K) {
    match object.meta().name.as_deref() {
        None | Some("") => r.add("metadata.name", "is required"),
        Some(name) if name.len() > MAX_NAME_LEN => r.add(
            "metadata.name",
            format!(
                "{} characters; at most {MAX_NAME_LEN} (it is a label value on the objects rendered for it)",
                name.len()
            ),
        ),
        Some(_) => {}
    }
}

/// Validates a FailoverCluster on its own.
pub fn validate_cluster(cluster: &FailoverCluster) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_cluster(cluster, &mut problems);
    problems
}

/// Validates a ResourceGroup against the cluster it names.
pub fn validate_group(group: &ResourceGroup, cluster: &FailoverCluster) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_group(group, cluster, &mut problems);
    problems
}

/// Validates a whole configuration: the cluster, each group, and what only the set
/// shows (groups of another cluster, duplicate group names, a VIP used twice).
pub fn validate_config(cluster: &FailoverCluster, groups: &[ResourceGroup]) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_cluster(cluster, &mut problems);
    let mut seen_groups: HashSet<String> = HashSet::new();
    // VIP address (without prefix) -> (group, resource index) of its first use.
    let mut vips: HashMap<IpAddr, (String, usize)> = HashMap::new();
    for group in groups {
        let group_name = group.name_any();
        let mut report = Report {
            object: object_name(group),
            problems: &mut problems,
        };
        if !seen_groups.insert(group_name.clone()) {
            report.add(
                "metadata.name",
                format!("duplicate ResourceGroup {group_name:?}"),
            );
        }
        for (i, resource) in group.spec.resources.iter().enumerate() {
            let Some(ip) = resource
                .virtual_ip
                .as_ref()
                .and_then(|v| v.network().ok())
                .map(|net| net.addr())
            else {
                continue;
            };
            match vips.get(&ip) {
                // Within one group, check_resources reports it.
                Some((other, _)) if *other == group_name => {}
                Some((other, j)) => report.add(
                    format!("spec.resources[{i}].virtualIP.address"),
                    format!("{ip} is already used by ResourceGroup/{other} spec.resources[{j}]"),
                ),
                None => {
                    vips.insert(ip, (group_name.clone(), i));
                }
            }
        }
        check_group(group, cluster, &mut problems);
    }
    problems
}

fn check_cluster(cluster: &FailoverCluster, problems: &mut Vec<Problem>) {
    let mut r = Report {
        object: object_name(cluster),
        problems,
    };
    check_name(&mut r, cluster);
    let spec = &cluster.spec;

    if spec.members.is_empty() {
        r.add("spec.members", "at least one member is required");
    }
    if spec.members.len() > MAX_MEMBERS {
        r.add(
            "spec.members",
            format!(
                "{} members; at most {MAX_MEMBERS} are allowed",
                spec.members.len()
            ),
        );
    }
    let mut nodes: HashMap<&str, usize> = HashMap::new();
    for (i, m) in spec.members.iter().enumerate() {
        let path = format!("spec.members[{i}]");
        // The node Lease `<cluster>-node-<node>` is an object name.
        let lease_name_len = cluster.name_any().len() + "-node-".len() + m.node.len();
        if lease_name_len > MAX_OBJECT_NAME_LEN {
            r.add(
                format!("{path}.node"),
                format!(
                    "the node Lease name <cluster>-node-<node> would have {lease_name_len} characters; at most {MAX_OBJECT_NAME_LEN}"
                ),
            );
        }
        if m.node.is_empty() {
            r.add(format!("{path}.node"), "must not be empty");
        } else {
            match nodes.entry(&m.node) {
                Entry::Occupied(first) => r.add(
                    format!("{path}.node"),
                    format!(
                        "duplicate member {:?} (also spec.members[{}])",
                        m.node,
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        if m.priority > MAX_PRIORITY {
            r.add(
                format!("{path}.priority"),
                format!("{} is out of range 0..=255", m.priority),
            );
        }
    }
    check_links(&mut r, &spec.members);

    let voters = spec.members.len();
    match spec.quorum {
        QuorumMode::None => {}
        QuorumMode::Witness if voters != 2 => r.add(
            "spec.quorum",
            format!("witness needs exactly 2 voting members, found {voters}"),
        ),
        QuorumMode::Majority | QuorumMode::Witness if voters < 2 => r.add(
            "spec.members",
            format!(
                "quorum {} needs at least 2 voting members, found {voters}; set spec.quorum to none for a single member",
                spec.quorum.as_str()
            ),
        ),
        QuorumMode::Majority if voters == 2 => r.add(
            "spec.quorum",
            "majority of 2 members can never fail over: a survivor holds 1 vote of 2; use witness (the API server Lease breaks the tie), 3 or more members, or none (split brain possible)",
        ),
        QuorumMode::Majority | QuorumMode::Witness => {}
    }
    if let Some(witness) = &spec.witness {
        if spec.quorum != QuorumMode::Witness {
            r.add(
                "spec.witness",
                format!(
                    "is only used with spec.quorum witness (the quorum is {})",
                    spec.quorum.as_str()
                ),
            );
        }
        if let Err(e) = witness.address() {
            r.add(
                "spec.witness.address",
                format!("{:?} is not an IP address: {e}", witness.address),
            );
        }
        if witness.port == Some(0) {
            r.add("spec.witness.port", "must be 1-65535");
        }
    }

    let hb = &spec.heartbeat;
    if hb.interval.get() < MIN_INTERVAL {
        r.add("spec.heartbeat.interval", "must be at least 5ms");
    }
    if hb.dead_after <= hb.interval {
        r.add(
            "spec.heartbeat.deadAfter",
            format!(
                "{} must be longer than spec.heartbeat.interval ({})",
                hb.dead_after, hb.interval
            ),
        );
    }
    if hb.port == 0 {
        r.add("spec.heartbeat.port", "must be 1..=65535");
    }

    if let Some(webhook) = spec.notifications.as_ref().and_then(|n| n.webhook.as_ref()) {
        if webhook.secret_ref.name.is_empty() {
            r.add(
                "spec.notifications.webhook.secretRef.name",
                "must not be empty",
            );
        }
        if webhook.secret_ref.key.is_empty() {
            r.add(
                "spec.notifications.webhook.secretRef.key",
                "must not be empty",
            );
        }
    }

    let ann = &spec.announcements;
    if !(1..=100).contains(&ann.count) {
        r.add(
            "spec.announcements.count",
            format!("{} is out of range 1..=100", ann.count),
        );
    }
}

/// The heartbeat links of the members: every address an IP, at most
/// [`MAX_ADDITIONAL_ADDRESSES`] additional ones, the same number on every member
/// (link i of a member pairs with link i of every other), one IP family per link (a
/// socket bound to an IPv4 address cannot reach an IPv6 one) and no address twice
/// in the cluster. A member without `address` (Kubernetes: the node's InternalIP,
/// resolved later) is checked again once it is resolved.
fn check_links(r: &mut Report<'_>, members: &[MemberSpec]) {
    let expected = members.first().map_or(0, |m| m.additional_addresses.len());
    // Address -> the field of its first use; link -> the family of its first address.
    let mut seen: HashMap<IpAddr, String> = HashMap::new();
    let mut families: BTreeMap<usize, (bool, String)> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        let path = format!("spec.members[{i}]");
        let extra = m.additional_addresses.len();
        if extra > MAX_ADDITIONAL_ADDRESSES {
            r.add(
                format!("{path}.additionalAddresses"),
                format!("{extra} addresses; at most {MAX_ADDITIONAL_ADDRESSES} are allowed"),
            );
        } else if extra != expected {
            // At the list, as the API server's rule (it sees all members at once).
            r.add(
                "spec.members",
                format!(
                    "{path}.additionalAddresses lists {extra} addresses, but spec.members[0] lists {expected}: link i of a member pairs with link i of every other member, so every member lists the same number"
                ),
            );
        }
        for (link, (name, text)) in m.links().enumerate() {
            let Some(text) = text else { continue };
            let field = format!("{path}.{name}");
            let ip: IpAddr = match text.parse() {
                Ok(ip) => ip,
                // The API server's rule can name the list but not the item: so does
                // this problem, with the item in the message.
                Err(e) if link > 0 => {
                    r.add(
                        format!("{path}.additionalAddresses"),
                        format!("{name}: {text:?} is not an IP address: {e}"),
                    );
                    continue;
                }
                Err(e) => {
                    r.add(field, format!("{text:?} is not an IP address: {e}"));
                    continue;
                }
            };
            match families.entry(link) {
                BTreeEntry::Occupied(first) => {
                    let (v6, first_field) = first.get();
                    if *v6 != ip.is_ipv6() {
                        r.add(
                            field.clone(),
                            format!(
                                "{ip} is of another IP family than {first_field} on the same link {link}: the addresses of one link are all IPv4 or all IPv6"
                            ),
                        );
                    }
                }
                BTreeEntry::Vacant(slot) => {
                    slot.insert((ip.is_ipv6(), field.clone()));
                }
            }
            match seen.entry(ip) {
                Entry::Occupied(first) => r.add(
                    field,
                    format!("{ip} is already used by {}: every heartbeat address in the cluster must differ", first.get()),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(field);
                }
            }
        }
    }
}

fn check_group(group: &ResourceGroup, cluster: &FailoverCluster, problems: &mut Vec<Problem>) {
    let mut r = Report {
        object: object_name(group),
        problems,
    };
    check_name(&mut r, group);
    let spec = &group.spec;
    let cluster_name = cluster.name_any();
    if let (Some(group_ns), Some(cluster_ns)) = (group.namespace(), cluster.namespace())
        && group_ns != cluster_ns
    {
        r.add(
            "metadata.namespace",
            format!("{group_ns:?} differs from the namespace of FailoverCluster/{cluster_name} ({cluster_ns:?})"),
        );
    }
    if spec.cluster != cluster_name {
        r.add(
            "spec.cluster",
            format!(
                "names FailoverCluster {:?}, but is validated against {cluster_name:?}",
                spec.cluster
            ),
        );
    }
    let members: HashSet<&str> = cluster
        .spec
        .members
        .iter()
        .map(|m| m.node.as_str())
        .collect();

    let mut owners = HashSet::new();
    for (i, node) in spec.preferred_owners.iter().enumerate() {
        let path = format!("spec.preferredOwners[{i}]");
        if !members.contains(node.as_str()) {
            r.add(
                path,
                format!("{node:?} is not a member of FailoverCluster/{cluster_name}"),
            );
        } else if !owners.insert(node) {
            r.add(path, format!("{node:?} is listed twice"));
        }
    }
    if let Some(owner) = &spec.owner
        && !members.contains(owner.as_str())
    {
        r.add(
            "spec.owner",
            format!("{owner:?} is not a member of FailoverCluster/{cluster_name}"),
        );
    }

    check_failback(&mut r, &spec.failback);

    check_resources(&mut r, &spec.resources);
    if let Some(hook) = &spec.hook {
        check_hook(&mut r, hook);
    }
}

fn check_hook(r: &mut Report<'_>, hook: &HookSpec) {
    check_command(r, "spec.hook.command", &hook.command);
    if hook.timeout.get().is_zero() {
        r.add("spec.hook.timeout", "must be longer than 0s");
    }
}

/// A command line: a non-empty program, no NUL byte anywhere (the OS cannot pass it).
fn check_command(r: &mut Report<'_>, path: &str, argv: &[String]) {
    match argv.first() {
        None => r.add(path.to_owned(), "must name a program"),
        Some(program) if program.is_empty() => {
            r.add(format!("{path}[0]"), "the program must not be empty");
        }
        Some(_) => {}
    }
    check_no_nul(r, path, argv);
}

fn check_no_nul(r: &mut Report<'_>, path: &str, values: &[String]) {
    for (i, value) in values.iter().enumerate() {
        if value.contains('\0') {
            r.add(format!("{path}[{i}]"), "must not contain a NUL character");
        }
    }
}

fn check_failback(r: &mut Report<'_>, failback: &FailbackSpec) {
    if failback.policy == FailbackPolicy::Window && failback.windows.is_empty() {
        r.add(
            "spec.failback.windows",
            "policy Window needs at least one window",
        );
    }
    for (i, w) in failback.windows.iter().enumerate() {
        if let Err(e) = parse_time_of_day(&w.start) {
            r.add(format!("spec.failback.windows[{i}].start"), e.to_string());
        }
        if let Err(e) = parse_time_of_day(&w.end) {
            r.add(format!("spec.failback.windows[{i}].end"), e.to_string());
        }
        if w.start == w.end {
            r.add(
                format!("spec.failback.windows[{i}].end"),
                "must differ from start (an empty window never opens)",
            );
        }
    }
    if !is_time_zone_name(&failback.time_zone) {
        r.add(
            "spec.failback.timeZone",
            format!(
                "{:?} is not an IANA time zone name such as UTC or Europe/Berlin",
                failback.time_zone
            ),
        );
    }
}

/// Shape check only: whether the zone exists is decided where the time zone
/// database is available (the agent), not in this pure module.
fn is_time_zone_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-');
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .split('/')
            .all(|part| !part.is_empty() && part.chars().all(ok_char))
}

fn is_resource_name(name: &str) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 63 && ok(first) && ok(last) && bytes.iter().all(|&b| ok(b) || b == b'-')
        }
        _ => false,
    }
}

fn check_resources(r: &mut Report<'_>, resources: &[ResourceSpec]) {
    if resources.is_empty() {
        r.add("spec.resources", "at least one resource is required");
    }
    if resources.len() > MAX_RESOURCES {
        r.add(
            "spec.resources",
            format!(
                "{} resources; at most {MAX_RESOURCES} are allowed",
                resources.len()
            ),
        );
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, res) in resources.iter().enumerate() {
        let path = format!("spec.resources[{i}]");
        if !is_resource_name(&res.name) {
            r.add(
                format!("{path}.name"),
                format!(
                    "{:?} must be a DNS label: lowercase letters, digits and '-', at most 63",
                    res.name
                ),
            );
        }
        match index.entry(&res.name) {
            Entry::Occupied(first) => r.add(
                format!("{path}.name"),
                format!(
                    "duplicate resource name {:?} (also spec.resources[{}])",
                    res.name,
                    first.get()
                ),
            ),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
        check_resource(r, &path, res);
    }

    let mut vips: HashMap<IpAddr, usize> = HashMap::new();
    for (i, res) in resources.iter().enumerate() {
        let Some(ip) = res.virtual_ip.as_ref().and_then(|v| v.network().ok()) else {
            continue;
        };
        match vips.entry(ip.addr()) {
            Entry::Occupied(first) => r.add(
                format!("spec.resources[{i}].virtualIP.address"),
                format!(
                    "{} is already used by spec.resources[{}]",
                    ip.addr(),
                    first.get()
                ),
            ),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }

    // Dependency edges by index; unknown targets and self-references are reported
    // here and left out of the graph so the cycle check sees only real edges.
    let mut edges: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, res) in resources.iter().enumerate() {
        for (j, dep) in res.depends_on.iter().enumerate() {
            let path = format!("spec.resources[{i}].dependsOn[{j}]");
            match index.get(dep.as_str()) {
                None => r.add(path, format!("unknown resource {dep:?}")),
                Some(&target) if target == i => r.add(path, "a resource cannot depend on itself"),
                Some(&target) => edges.entry(i).or_default().push(target),
            }
        }
    }
    for cycle in find_cycles(resources.len(), &edges) {
        let names: Vec<&str> = cycle.iter().map(|&i| resources[i].name.as_str()).collect();
        r.add(
            format!("spec.resources[{}].dependsOn", cycle[0]),
            format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
        );
    }
}

fn check_resource(r: &mut Report<'_>, path: &str, res: &ResourceSpec) {
    let kinds = [
        res.virtual_ip.is_some(),
        res.workload.is_some(),
        res.process.is_some(),
        res.health_check.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if kinds != 1 {
        r.add(
            path.to_owned(),
            format!("set exactly one of virtualIP, workload, process, healthCheck (found {kinds})"),
        );
    }
    if let Some(vip) = &res.virtual_ip {
        if let Err(e) = vip.network() {
            r.add(
                format!("{path}.virtualIP.address"),
                format!(
                    "{:?} is not a CIDR such as 10.0.0.10/24 or fd00::10/64: {e}",
                    vip.address
                ),
            );
        }
        if let Some(ifname) = &vip.interface
            && (ifname.is_empty()
                || ifname.len() > 15
                || ifname.contains(|c: char| c == '/' || c == ':' || c.is_whitespace()))
        {
            r.add(
                format!("{path}.virtualIP.interface"),
                format!("{ifname:?} is not a valid interface name"),
            );
        }
    }
    if let Some(w) = &res.workload
        && w.name.is_empty()
    {
        r.add(format!("{path}.workload.name"), "must not be empty");
    }
    if let Some(process) = &res.process {
        check_process(r, &format!("{path}.process"), process);
    }
    if let Some(hc) = &res.health_check {
        check_health_check(r, &format!("{path}.healthCheck"), hc);
    }
}

fn is_env_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    name.len() <= 256
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '-' | '.' | '_'))
        && name.chars().all(ok)
}

fn check_process(r: &mut Report<'_>, path: &str, process: &ProcessSpec) {
    check_command(r, &format!("{path}.command"), &process.command);
    check_no_nul(r, &format!("{path}.args"), &process.args);
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, var) in process.env.iter().enumerate() {
        let at = format!("{path}.env[{i}]");
        if !is_env_name(&var.name) {
            r.add(
                format!("{at}.name"),
                format!(
                    "{:?} is not a variable name: letters, digits, '_', '-', '.', not starting with a digit",
                    var.name
                ),
            );
        }
        if let Some(first) = names.insert(&var.name, i) {
            r.add(
                format!("{at}.name"),
                format!(
                    "duplicate variable {:?} (also {path}.env[{first}])",
                    var.name
                ),
            );
        }
        if var.value.contains('\0') {
            r.add(format!("{at}.value"), "must not contain a NUL character");
        }
    }
    if let Some(dir) = &process.working_dir
        && (!dir.starts_with('/') || dir.contains('\0'))
    {
        r.add(
            format!("{path}.workingDir"),
            format!("{dir:?} must be an absolute path"),
        );
    }
}

fn check_health_check(r: &mut Report<'_>, path: &str, hc: &HealthCheckSpec) {
    let probes = [hc.tcp.is_some(), hc.http.is_some(), hc.exec.is_some()]
        .iter()
        .filter(|set| **set)
        .count();
    if probes != 1 {
        r.add(
            path.to_owned(),
            format!("set exactly one of tcp, http, exec (found {probes})"),
        );
    }
    if let Some(exec) = &hc.exec {
        check_command(r, &format!("{path}.exec.command"), &exec.command);
    }
    if hc.failure_threshold == 0 {
        r.add(format!("{path}.failureThreshold"), "must be at least 1");
    }
    if hc.tcp.as_ref().is_some_and(|t| t.port == 0) {
        r.add(format!("{path}.tcp.port"), "must be 1..=65535");
    }
    if let Some(http) = &hc.http {
        if http.port == 0 {
            r.add(format!("{path}.http.port"), "must be 1..=65535");
        }
        if !http.path.starts_with('/') {
            r.add(format!("{path}.http.path"), "must start with '/'");
        }
        let range = http.status_range;
        for (field, status) in [("min", range.min), ("max", range.max)] {
            if !(100..=599).contains(&status) {
                r.add(
                    format!("{path}.http.statusRange.{field}"),
                    format!("{status} is not an HTTP status (100..=599)"),
                );
            }
        }
        if range.min > range.max {
            r.add(
                format!("{path}.http.statusRange.max"),
                format!("{} is below min ({})", range.max, range.min),
            );
        }
    }
    if hc.timeout > hc.interval {
        r.add(
            format!("{path}.timeout"),
            format!("{} must not exceed interval ({})", hc.timeout, hc.interval),
        );
    }
}

impl FailoverCluster {
    /// Validates this cluster on its own; see [`validate_cluster`].
    pub fn validate(&self) -> Vec<Problem> {
        validate_cluster(self)
    }
}

impl ResourceGroup {
    /// Validates this group against its cluster; see [`validate_group`].
    pub fn validate(&self, cluster: &FailoverCluster) -> Vec<Problem> {
        validate_group(self, cluster)
    }
}

/// Checks what the standalone agent needs beyond [`validate_config`]: every
/// member's `address` ([`validate_member_addresses`]) and, with witness quorum,
/// where the `failover witness` process listens (`spec.witness`).
pub fn validate_standalone(cluster: &FailoverCluster) -> Vec<Problem> {
    let mut problems = validate_member_addresses(cluster);
    if cluster.spec.quorum == QuorumMode::Witness && cluster.spec.witness.is_none() {
        Report {
            object: object_name(cluster),
            problems: &mut problems,
        }
        .add(
            "spec.witness",
            "required with quorum witness when the agent runs standalone: the address of the `failover witness` process (in Kubernetes it may be left out to use the Lease <cluster>-witness)",
        );
    }
    problems
}

/// Without a Kubernetes node to take the InternalIP from, every member needs an
/// `address` (the operator resolves them into the agents' configuration, so the
/// agent checks them in both modes).
pub fn validate_member_addresses(cluster: &FailoverCluster) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut r = Report {
        object: object_name(cluster),
        problems: &mut problems,
    };
    for (i, member) in cluster.spec.members.iter().enumerate() {
        if member.address.is_none() {
            r.add(
                format!("spec.members[{i}].address"),
                "required when the agent runs standalone (there is no node InternalIP to use)",
            );
        }
    }
    problems
}

/// Checks what only the Kubernetes mode forbids: `process` resources, which the
/// agent runs only standalone (in Kubernetes a workload is the way to run a service).
/// The operator adds these problems to the ones of [`validate_config`], so such a
/// group sets ConfigValid=False.
pub fn validate_kubernetes(groups: &[ResourceGroup]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for group in groups {
        let mut r = Report {
            object: object_name(group),
            problems: &mut problems,
        };
        for (i, res) in group.spec.resources.iter().enumerate() {
            if res.process.is_some() {
                r.add(
                    format!("spec.resources[{i}].process"),
                    "process resources run only when the agent runs standalone; in Kubernetes use a workload",
                );
            }
        }
    }
    problems
}

/// Checks clusters that share nodes for the same heartbeat port (both agents would
/// bind it on the shared node). The conflict is reported on the later cluster, by
/// creation time and then by namespace/name, so the earlier one keeps running.
pub fn validate_heartbeat_ports(clusters: &[FailoverCluster]) -> Vec<Problem> {
    let mut ordered: Vec<&FailoverCluster> = clusters.iter().collect();
    ordered.sort_by(|a, b| {
        let key = |c: &FailoverCluster| {
            (
                c.metadata.creation_timestamp.clone(),
                c.namespace(),
                c.name_any(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut problems = Vec::new();
    for (i, later) in ordered.iter().enumerate() {
        let nodes: HashSet<&str> = later.spec.members.iter().map(|m| m.node.as_str()).collect();
        let earlier = ordered[..i].iter().find_map(|earlier| {
            let shared = earlier
                .spec
                .members
                .iter()
                .find(|m| nodes.contains(m.node.as_str()))?;
            (earlier.spec.heartbeat.port == later.spec.heartbeat.port)
                .then_some((earlier, &shared.node))
        });
        if let Some((earlier, node)) = earlier {
            problems.push(Problem {
                object: object_name(*later),
                path: "spec.heartbeat.port".to_owned(),
                message: format!(
                    "{} is also used by {}, which shares node {node:?}; choose another port",
                    later.spec.heartbeat.port,
                    object_name(*earlier)
                ),
            });
        }
    }
    problems
}

/// Finds dependency cycles (each reported once, starting at its lowest index).
fn find_cycles(n: usize, edges: &BTreeMap<usize, Vec<usize>>) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    // Iterative DFS: a hostile spec cannot overflow the stack with a long chain.
    let mut mark = vec![Mark::New; n];
    let mut cycles = Vec::new();
    let mut seen: HashSet<Vec<usize>> = HashSet::new();
    for root in 0..n {
        if mark[root] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnStack;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let targets = edges.get(&node).map(Vec::as_slice).unwrap_or_default();
            if let Some(&target) = targets.get(*next) {
                *next += 1;
                match mark[target] {
                    Mark::New => {
                        mark[target] = Mark::OnStack;
                        stack.push((target, 0));
                    }
                    Mark::OnStack => {
                        let start = stack.iter().position(|&(v, _)| v == target).unwrap_or(0);
                        let mut cycle: Vec<usize> =
                            stack[start..].iter().map(|&(v, _)| v).collect();
                        let min = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, v)| *v)
                            .map_or(0, |(k, _)| k);
                        cycle.rotate_left(min);
                        if seen.insert(cycle.clone()) {
                            cycles.push(cycle);
                        }
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(list: &[(usize, usize)]) -> BTreeMap<usize, Vec<usize>> {
        let mut map: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &(a, b) in list {
            map.entry(a).or_default().push(b);
        }
        map
    }

    #[test]
    fn no_cycle_in_a_dag() {
        assert!(find_cycles(4, &edges(&[(0, 1), (1, 2), (0, 2), (3, 0)])).is_empty());
    }

    #[test]
    fn finds_each_cycle_once_from_its_lowest_index() {
        let cycles = find_cycles(5, &edges(&[(2, 1), (1, 2), (3, 4), (4, 0), (0, 3)]));
        assert_eq!(cycles, vec![vec![0, 3, 4], vec![1, 2]]);
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let n = 100_000;
        let list: Vec<(usize, usize)> =
            (0..n - 1).map(|i| (i, i + 1)).chain([(n - 1, 0)]).collect();
        let cycles = find_cycles(n, &edges(&list));
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].len(), n);
    }

    #[test]
    fn resource_and_zone_names() {
        assert!(is_resource_name("vip-1"));
        assert!(!is_resource_name("-vip"));
        assert!(!is_resource_name("Vip"));
        assert!(!is_resource_name(""));
        assert!(is_time_zone_name("UTC"));
        assert!(is_time_zone_name("America/Argentina/Salta"));
        assert!(is_time_zone_name("Etc/GMT+2"));
        assert!(!is_time_zone_name("Europe//Berlin"));
        assert!(!is_time_zone_name("/UTC"));
        assert!(!is_time_zone_name("Mars Time"));
    }
}
