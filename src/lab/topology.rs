//! Lab topology: a bridge in its own "switch" namespace, N node namespaces and one
//! client namespace, each joined to the bridge by a veth, all named `<prefix>-…`.
//! Optionally a second bridge joins the nodes only: a dedicated cluster link that
//! carries the heartbeats (the appliance pair's internal line), alone or beside the
//! service network (two heartbeat links), so that the service network can fail
//! without cutting the members off from each other. Optionally a witness namespace
//! on the service bridge hosts `failover witness` for a two-member pair.
//!
//! Owns: the command plan (pure, tested), running it with `ip`, the processes the lab
//! starts, and teardown. Must never: delete or enter a namespace without this lab's
//! prefix, or touch the host's root namespace (the bridge lives in `<prefix>-sw`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::LabError;

/// Interface name of every endpoint (node or client) inside its namespace.
pub const IFACE: &str = "eth0";
/// Bridge name inside the switch namespace.
pub const BRIDGE: &str = "br0";
/// Interface of the cluster link inside a node namespace, and its bridge.
pub const CLUSTER_IFACE: &str = "eth1";
pub const CLUSTER_BRIDGE: &str = "br1";
/// The client's IPv4 address.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The client's IPv6 address.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
/// The witness namespace's IPv4 address (service network).
pub const WITNESS_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 5);
/// The witness namespace's IPv6 address.
pub const WITNESS_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 5);
/// Most nodes a lab may have: addresses 10.77.0.11.. must stay below the VIPs at .100.
pub const MAX_NODES: usize = 80;

/// IPv4 address of node `i` (1-based): 10.77.0.(10+i).
pub fn node_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, (10 + i.min(MAX_NODES)) as u8)
}

/// Cluster-link address of node `i` (1-based): 10.78.0.(10+i).
pub fn node_link_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 78, 0, (10 + i.min(MAX_NODES)) as u8)
}

/// IPv6 address of node `i` (1-based): fd77::(10+i).
pub fn node_v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, (10 + i.min(MAX_NODES)) as u16)
}

/// The bridge-side port of node `i`'s cluster link in the switch namespace: setting
/// it down pulls that node's cable to the cluster link.
pub fn cluster_port(i: usize) -> String {
    format!("l{i}")
}

/// Which links the members heartbeat over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeats {
    /// The service network only (eth0), no cluster link.
    ServiceNetwork,
    /// The cluster link only (eth1): losing eth0 is `InterfaceDown`, not a partition.
    ClusterLink,
    /// Both: link 0 on the service network, link 1 (`additionalAddresses`) on the
    /// cluster link.
    BothLinks,
}

/// What a lab is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    pub nodes: usize,
    pub heartbeats: Heartbeats,
    /// A witness namespace at [`WITNESS_V4`] on the service bridge.
    pub witness: bool,
}

impl Topology {
    /// `nodes` nodes heartbeating over the service network, no witness.
    pub fn plain(nodes: usize) -> Self {
        Topology {
            nodes,
            heartbeats: Heartbeats::ServiceNetwork,
            witness: false,
        }
    }

    /// Whether the nodes share a cluster link (a second bridge).
    pub fn cluster_link(&self) -> bool {
        self.heartbeats != Heartbeats::ServiceNetwork
    }

    /// How many links the members heartbeat over.
    pub fn heartbeat_links(&self) -> usize {
        match self.heartbeats {
            Heartbeats::BothLinks => 2,
            Heartbeats::ServiceNetwork | Heartbeats::ClusterLink => 1,
        }
    }
}

/// A prefix no other lab of this machine uses right now: process id and a counter,
/// so concurrent tests in one process and concurrent processes do not collide.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The full pid (not pid % 10000): two live processes can never share it.
    format!("fo{}x{}", std::process::id(), n)
}

/// Namespace names of one lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_string(),
        }
    }
    pub fn switch(&self) -> String {
        format!("{}-sw", self.prefix)
    }
    pub fn node(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }
    pub fn client(&self) -> String {
        format!("{}-c", self.prefix)
    }
    pub fn witness(&self) -> String {
        format!("{}-w", self.prefix)
    }
    /// Whether `ns` belongs to this lab (exact prefix followed by `-`).
    pub fn owns(&self, ns: &str) -> bool {
        ns.strip_prefix(&self.prefix)
            .is_some_and(|rest| rest.starts_with('-'))
    }
}

/// The `ip` invocations that build a lab of `topology` (pure, so it can be tested).
pub fn setup_plan(prefix: &str, topology: &Topology) -> Vec<Vec<String>> {
    let nodes = topology.nodes;
    let names = Names::new(prefix);
    let sw = names.switch();
    let mut plan: Vec<Vec<String>> = Vec::new();
    let mut cmd = |args: &[&str]| plan.push(args.iter().map(|s| s.to_string()).collect());
    cmd(&["netns", "add", &sw]);
    cmd(&["-n", &sw, "link", "set", "lo", "up"]);
    cmd(&["-n", &sw, "link", "add", BRIDGE, "type", "bridge"]);
    // No STP and no forward delay: ports forward at once; no IGMP snooping so VRRP
    // multicast (if an implementation uses it) floods like on a dumb switch.
    cmd(&[
        "-n",
        &sw,
        "link",
        "set",
        BRIDGE,
        "type",
        "bridge",
        "forward_delay",
        "0",
        "stp_state",
        "0",
        "mcast_snooping",
        "0",
    ]);
    cmd(&["-n", &sw, "link", "set", BRIDGE, "up"]);
    let mut endpoints: Vec<(String, String, String, String)> = (1..=nodes)
        .map(|i| {
            (
                names.node(i),
                format!("n{i}"),
                format!("{}/24", node_v4(i)),
                format!("{}/64", node_v6(i)),
            )
        })
        .collect();
    endpoints.push((
        names.client(),
        "c".to_string(),
        format!("{CLIENT_V4}/24"),
        format!("{CLIENT_V6}/64"),
    ));
    if topology.witness {
        endpoints.push((
            names.witness(),
            "w".to_string(),
            format!("{WITNESS_V4}/24"),
            format!("{WITNESS_V6}/64"),
        ));
    }
    for (ns, port, v4, v6) in &endpoints {
        cmd(&["netns", "add", ns]);
        cmd(&["-n", ns, "link", "set", "lo", "up"]);
        cmd(&[
            "-n", &sw, "link", "add", port, "type", "veth", "peer", "name", IFACE, "netns", ns,
        ]);
        cmd(&["-n", &sw, "link", "set", port, "master", BRIDGE, "up"]);
        cmd(&["-n", ns, "addr", "add", v4, "dev", IFACE]);
        cmd(&["-n", ns, "addr", "add", v6, "dev", IFACE, "nodad"]);
        cmd(&["-n", ns, "link", "set", IFACE, "up"]);
    }
    if topology.cluster_link() {
        cmd(&["-n", &sw, "link", "add", CLUSTER_BRIDGE, "type", "bridge"]);
        cmd(&[
            "-n",
            &sw,
            "link",
            "set",
            CLUSTER_BRIDGE,
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
        ]);
        cmd(&["-n", &sw, "link", "set", CLUSTER_BRIDGE, "up"]);
        for i in 1..=nodes {
            let (ns, port) = (names.node(i), cluster_port(i));
            let address = format!("{}/24", node_link_v4(i));
            cmd(&[
                "-n",
                &sw,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                CLUSTER_IFACE,
                "netns",
                &ns,
            ]);
            cmd(&[
                "-n",
                &sw,
                "link",
                "set",
                &port,
                "master",
                CLUSTER_BRIDGE,
                "up",
            ]);
            cmd(&["-n", &ns, "addr", "add", &address, "dev", CLUSTER_IFACE]);
            cmd(&["-n", &ns, "link", "set", CLUSTER_IFACE, "up"]);
        }
    }
    // The probe sends ARP requests from a MAC that is not the client's own so that the
    // replies never touch the client kernel's neighbour cache; it needs promiscuous
    // mode to receive them.
    cmd(&["-n", &names.client(), "link", "set", IFACE, "promisc", "on"]);
    plan
}

/// Names listed by `ip netns list` (lines like `name (id: 3)` or `name`).
pub fn parse_netns_list(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Process ids listed by `ip netns pids` (one per line; junk is skipped).
pub fn parse_pids(out: &str) -> Vec<u32> {
    out.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn render(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `program args…` to completion and returns its stdout; non-zero exit is an error.
pub fn run(program: &str, args: &[String]) -> Result<String, LabError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            cmd: render(program, args),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            cmd: render(program, args),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `ip …` with string slices.
pub fn ip(args: &[&str]) -> Result<String, LabError> {
    run(
        "ip",
        &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
}

/// Whether the lab can run here: root and `ip` available. The error says what is missing.
pub fn check_prerequisites() -> Result<(), String> {
    let uid = run("id", &["-u".to_string()]).map_err(|e| format!("cannot run `id -u`: {e}"))?;
    if uid.trim() != "0" {
        return Err("the lab needs root (network namespaces, veths)".to_string());
    }
    ip(&["-V"]).map_err(|e| format!("the lab needs iproute2 (`ip`): {e}"))?;
    Ok(())
}

/// Addresses (`ip -o addr show`) of namespace `ns` contain `vip` (bare address, no prefix length).
pub fn holds_address(ns: &str, vip: &str) -> Result<bool, LabError> {
    let out = ip(&["-n", ns, "-o", "addr", "show"])?;
    Ok(out
        .lines()
        .any(|l| super::sampler::line_has_address(l, vip)))
}

/// One lab. Dropping it tears it down (best effort), so a panicking test leaves nothing.
#[derive(Debug)]
pub struct Lab {
    names: Names,
    prefix: String,
    topology: Topology,
    children: Vec<Child>,
    down: bool,
}

impl Lab {
    /// Builds a lab with `nodes` nodes under a fresh unique prefix.
    pub fn up(nodes: usize) -> Result<Lab, LabError> {
        Self::up_with(&Topology::plain(nodes))
    }

    /// Builds a lab of `topology` under a fresh unique prefix.
    pub fn up_with(topology: &Topology) -> Result<Lab, LabError> {
        Self::up_with_prefix(&unique_prefix(), topology)
    }

    /// Builds a lab under `prefix`; on any failure removes what was already made.
    pub fn up_with_prefix(prefix: &str, topology: &Topology) -> Result<Lab, LabError> {
        let nodes = topology.nodes;
        if nodes == 0 || nodes > MAX_NODES {
            return Err(LabError::Invalid {
                what: "node count".into(),
                detail: format!("{nodes} (1..={MAX_NODES})"),
            });
        }
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(LabError::Invalid {
                what: "lab prefix".into(),
                detail: format!("{prefix:?} (ASCII letters and digits only)"),
            });
        }
        let names = Names::new(prefix);
        // Refuse a prefix already in use: tearing down after a failed set-up would
        // otherwise delete namespaces this lab did not create.
        if let Some(ns) = parse_netns_list(&ip(&["netns", "list"])?)
            .into_iter()
            .find(|ns| names.owns(ns))
        {
            return Err(LabError::Invalid {
                what: "lab prefix".into(),
                detail: format!("{prefix} is already in use (namespace {ns})"),
            });
        }
        let lab = Lab {
            names,
            prefix: prefix.to_string(),
            topology: *topology,
            children: Vec::new(),
            down: false,
        };
        for args in setup_plan(prefix, topology) {
            // On error `lab` drops here and tears down the partial lab.
            run("ip", &args)?;
        }
        tracing::debug!(prefix, nodes, "lab up");
        Ok(lab)
    }

    /// Re-attaches to a lab built earlier (e.g. by `failover lab up`) to tear it down.
    pub fn attach(prefix: &str) -> Lab {
        Lab {
            names: Names::new(prefix),
            prefix: prefix.to_string(),
            topology: Topology::plain(0),
            children: Vec::new(),
            down: false,
        }
    }

    /// Leaves the lab in place (for scripts); returns its prefix.
    pub fn keep(mut self) -> String {
        self.down = true;
        std::mem::take(&mut self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn nodes(&self) -> usize {
        self.topology.nodes
    }
    pub fn topology(&self) -> &Topology {
        &self.topology
    }
    /// The addresses member `i` heartbeats from, link 0 first (see [`Heartbeats`]).
    pub fn heartbeat_links(&self, i: usize) -> Vec<Ipv4Addr> {
        match self.topology.heartbeats {
            Heartbeats::ServiceNetwork => vec![node_v4(i)],
            Heartbeats::ClusterLink => vec![node_link_v4(i)],
            Heartbeats::BothLinks => vec![node_v4(i), node_link_v4(i)],
        }
    }
    /// The witness's address, when the lab has a witness namespace.
    pub fn witness_v4(&self) -> Option<Ipv4Addr> {
        self.topology.witness.then_some(WITNESS_V4)
    }
    pub fn witness_ns(&self) -> Option<String> {
        self.topology.witness.then(|| self.names.witness())
    }
    pub fn node_ns(&self, i: usize) -> String {
        self.names.node(i)
    }
    pub fn client_ns(&self) -> String {
        self.names.client()
    }
    pub fn switch_ns(&self) -> String {
        self.names.switch()
    }
    pub fn node_namespaces(&self) -> Vec<String> {
        (1..=self.nodes()).map(|i| self.node_ns(i)).collect()
    }

    /// Starts `program args…` inside `ns` (`ip netns exec` execs it, so the returned pid
    /// is the program's own). Output goes to `log` when given, else is discarded;
    /// stdout can instead be piped with `piped_stdout` (take it from the child).
    pub fn spawn(
        &mut self,
        ns: &str,
        program: &Path,
        args: &[String],
        log: Option<&Path>,
    ) -> Result<u32, LabError> {
        let child = self.spawn_child(ns, program, args, log, false)?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// Like `spawn` but with stdout piped and the child handed to the caller, who must
    /// wait for it (used for the probe, whose summary is its stdout).
    pub fn spawn_piped(
        &mut self,
        ns: &str,
        program: &Path,
        args: &[String],
    ) -> Result<Child, LabError> {
        self.spawn_child(ns, program, args, None, true)
    }

    fn spawn_child(
        &self,
        ns: &str,
        program: &Path,
        args: &[String],
        log: Option<&Path>,
        piped: bool,
    ) -> Result<Child, LabError> {
        self.ensure_own(ns)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program).args(args);
        cmd.stdin(Stdio::null());
        let describe = || {
            format!(
                "ip netns exec {ns} {} {}",
                program.display(),
                args.join(" ")
            )
        };
        match (log, piped) {
            (_, true) => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
            }
            (Some(path), false) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| LabError::io(path.display().to_string(), e))?;
                let err = file
                    .try_clone()
                    .map_err(|e| LabError::io(path.display().to_string(), e))?;
                cmd.stdout(file).stderr(err);
            }
            (None, false) => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        cmd.spawn().map_err(|source| LabError::Spawn {
            cmd: describe(),
            source,
        })
    }

    /// Runs `program args…` inside `ns` to completion.
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
        self.ensure_own(ns)?;
        let mut all = vec![
            "netns".to_string(),
            "exec".into(),
            ns.into(),
            program.into(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        run("ip", &all)
    }

    fn ensure_own(&self, ns: &str) -> Result<(), LabError> {
        if self.names.owns(ns) {
            Ok(())
        } else {
            Err(LabError::Invalid {
                what: "namespace".into(),
                detail: format!("{ns} is not part of lab {}", self.prefix),
            })
        }
    }

    /// Reaps children that already exited (e.g. after a SIGKILL) so none stays a zombie.
    pub fn reap(&mut self) {
        self.children
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
    }

    /// Kills every process of the lab (started by it or living in its namespaces) and
    /// deletes its namespaces. Idempotent; returns the first error but tries everything.
    pub fn down(&mut self) -> Result<(), LabError> {
        if self.down {
            return Ok(());
        }
        self.down = true;
        let mut first_err: Option<LabError> = None;
        let namespaces: Vec<String> = match ip(&["netns", "list"]) {
            Ok(out) => parse_netns_list(&out)
                .into_iter()
                .filter(|ns| self.names.owns(ns))
                .collect(),
            Err(e) => {
                first_err.get_or_insert(e);
                Vec::new()
            }
        };
        // Daemons may have forked processes we never saw: kill whatever lives in our
        // namespaces (only ours, by prefix), then our direct children.
        for ns in &namespaces {
            if let Ok(out) = ip(&["netns", "pids", ns]) {
                let pids = parse_pids(&out);
                if !pids.is_empty() {
                    let _ = super::fault::signal_all(&pids, super::fault::Signal::Kill);
                }
            }
        }
        for child in &mut self.children {
            let _ = child.kill();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in &mut self.children {
            // Bounded: SIGKILL was sent; poll instead of a blocking wait.
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        self.children.clear();
        for ns in &namespaces {
            if let Err(e) = ip(&["netns", "del", ns]) {
                first_err.get_or_insert(e);
            }
        }
        tracing::debug!(prefix = %self.prefix, "lab down");
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.down() {
            tracing::warn!(prefix = %self.prefix, error = %e, "lab teardown incomplete");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_plan() {
        assert_eq!(node_v4(1), Ipv4Addr::new(10, 77, 0, 11));
        assert_eq!(node_v4(3), Ipv4Addr::new(10, 77, 0, 13));
        assert_eq!(node_v6(2).to_string(), "fd77::c");
    }

    #[test]
    fn prefixes_are_unique_within_a_process() {
        assert_ne!(unique_prefix(), unique_prefix());
    }

    #[test]
    fn names_own_only_their_prefix() {
        let n = Names::new("fo12x1");
        assert!(n.owns("fo12x1-n1"));
        assert!(n.owns(&n.switch()));
        assert!(
            !n.owns("fo12x10-n1"),
            "another lab whose prefix extends ours"
        );
        assert!(!n.owns("fo12x1"));
        assert!(!n.owns("other"));
    }

    #[test]
    fn plan_builds_switch_nodes_and_client_inside_namespaces() {
        let plan = setup_plan("fo1x0", &Topology::plain(2));
        let joined: Vec<String> = plan.iter().map(|a| a.join(" ")).collect();
        assert_eq!(joined[0], "netns add fo1x0-sw");
        for ns in ["fo1x0-n1", "fo1x0-n2", "fo1x0-c"] {
            assert!(joined.contains(&format!("netns add {ns}")), "{ns}");
            assert!(joined.contains(&format!("-n {ns} link set lo up")));
        }
        assert!(joined.contains(&"-n fo1x0-n2 addr add 10.77.0.12/24 dev eth0".to_string()));
        assert!(joined.contains(&"-n fo1x0-c addr add 10.77.0.2/24 dev eth0".to_string()));
        assert!(joined.contains(&"-n fo1x0-n1 addr add fd77::b/64 dev eth0 nodad".to_string()));
        // Every link command outside `netns add` names a namespace: nothing touches the root ns.
        for args in &plan {
            assert!(args[0] == "netns" || args[0] == "-n", "{args:?}");
        }
        assert!(!joined.iter().any(|c| c.contains(CLUSTER_IFACE)));
        assert!(!joined.iter().any(|c| c.contains("fo1x0-w")));
    }

    #[test]
    fn a_witness_joins_the_service_bridge_only() {
        let topology = Topology {
            witness: true,
            ..Topology::plain(2)
        };
        let plan = setup_plan("fo1x0", &topology);
        let joined: Vec<String> = plan.iter().map(|a| a.join(" ")).collect();
        assert!(joined.contains(&"netns add fo1x0-w".to_string()));
        assert!(joined.contains(&"-n fo1x0-sw link set w master br0 up".to_string()));
        assert!(joined.contains(&"-n fo1x0-w addr add 10.77.0.5/24 dev eth0".to_string()));
        assert!(!joined.iter().any(|c| c.contains("fo1x0-n3")));
        assert!(!joined.iter().any(|c| c.contains(CLUSTER_BRIDGE)));
    }

    #[test]
    fn a_cluster_link_joins_the_nodes_only() {
        let plan = setup_plan(
            "fo1x0",
            &Topology {
                heartbeats: Heartbeats::BothLinks,
                ..Topology::plain(2)
            },
        );
        let joined: Vec<String> = plan.iter().map(|a| a.join(" ")).collect();
        assert!(joined.contains(&"-n fo1x0-sw link set l2 master br1 up".to_string()));
        assert!(joined.contains(&"-n fo1x0-n2 addr add 10.78.0.12/24 dev eth1".to_string()));
        assert!(
            !joined
                .iter()
                .any(|c| c.starts_with("-n fo1x0-c") && c.contains("eth1"))
        );
        for args in &plan {
            assert!(args[0] == "netns" || args[0] == "-n", "{args:?}");
        }
    }

    #[test]
    fn parses_netns_list_and_pids() {
        let out = "fo1x0-n1 (id: 2)\nfo1x0-sw (id: 0)\nplain\n";
        assert_eq!(parse_netns_list(out), vec!["fo1x0-n1", "fo1x0-sw", "plain"]);
        assert_eq!(parse_pids("12\n\n34\nx\n"), vec![12, 34]);
    }

    #[test]
    fn rejects_bad_sizes_and_prefixes_before_running_anything() {
        assert!(Lab::up_with_prefix("fo1", &Topology::plain(0)).is_err());
        assert!(Lab::up_with_prefix("fo1", &Topology::plain(MAX_NODES + 1)).is_err());
        assert!(Lab::up_with_prefix("a b", &Topology::plain(1)).is_err());
    }
}
