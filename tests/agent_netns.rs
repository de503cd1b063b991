//! Root test of the standalone agent on real Linux networking: three member
//! namespaces on a bridge (in a fourth namespace), one `failover agent` process per
//! member, a VIP that must be on exactly the right node after a SIGKILL of the
//! owner, a refused invalid file, a configuration reload, a restart and a graceful
//! SIGTERM handover; and `failover ctl --standalone` reading a running agent.
//!
//! Skips (with a printed reason) unless run as root with `ip` available. Everything
//! it creates carries the prefix `fa<pid>` and is removed by a Drop guard; every
//! wait is bounded. Timings are printed, never asserted beyond generous bounds.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not running as root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is missing".into());
    }
    None
}

/// Whether this test cannot run here (see [`skip_reason`]) or lacks one of the
/// `tools` (each answers `--version`); prints why as a SKIPPED line.
fn skipped(tools: &[&str]) -> bool {
    let missing_tool = || {
        tools
            .iter()
            .find(|tool| Command::new(tool).arg("--version").output().is_err())
            .map(|tool| format!("`{tool}` is missing"))
    };
    match skip_reason().or_else(missing_tool) {
        Some(reason) => {
            println!("SKIPPED agent_netns: {reason}");
            true
        }
        None => false,
    }
}

/// The namespaces, files and agent processes of one test run.
struct Lab {
    prefix: String,
    subnet: String,
    dir: PathBuf,
    namespaces: Vec<String>,
    agents: Vec<Option<Child>>,
    /// Agents started from now on serve /metrics on [`METRICS`] in their namespace.
    metrics: bool,
    /// Agents started from now on authenticate with this key file (else they run
    /// with `--insecure-no-auth`).
    key: Option<PathBuf>,
    /// Agents started from now on each read their own copy of the configuration
    /// ([`Lab::member_config`]) instead of the shared [`Lab::config_path`].
    own_files: bool,
}

/// Where an agent serves /metrics inside its namespace when the lab asks for it.
const METRICS: &str = "127.0.0.1:9464";

impl Lab {
    /// A lab whose names start with `fa<pid><tag>` (tests of this file run at once).
    fn new(tag: char) -> Self {
        let pid = std::process::id();
        let prefix = format!("fa{pid}{tag}");
        let dir = std::env::temp_dir().join(format!("failover-agent-netns-{pid}{tag}"));
        fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            subnet: format!("10.78.{}", pid % 200),
            prefix,
            dir,
            namespaces: Vec::new(),
            // n1..n3, and a second witness process in n3's namespace.
            agents: vec![None, None, None, None],
            metrics: false,
            key: None,
            own_files: false,
        };
        lab.build().unwrap();
        lab
    }

    fn ns(&self, node: usize) -> String {
        format!("{}n{node}", self.prefix)
    }

    fn vip(&self) -> String {
        format!("{}.100", self.subnet)
    }

    fn build(&mut self) -> Result<(), String> {
        let bridge = format!("{}b", self.prefix);
        ip(&["netns", "add", &bridge])?;
        self.namespaces.push(bridge.clone());
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
        for node in 1..=3 {
            let ns = self.ns(node);
            ip(&["netns", "add", &ns])?;
            self.namespaces.push(ns.clone());
            let veth = format!("v{node}");
            ip(&[
                "-n", &bridge, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            ip(&["-n", &bridge, "link", "set", &veth, "master", "br0", "up"])?;
            let address = format!("{}.{node}/24", self.subnet);
            ip(&["-n", &ns, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("cluster.yaml")
    }

    /// The configuration file of `node`'s agent when members have their own files.
    fn member_config(&self, node: usize) -> PathBuf {
        self.dir.join(format!("n{node}.yaml"))
    }

    fn write_config(&self, n1_paused: bool) {
        self.write_config_with(n1_paused, "250ms");
    }

    fn write_config_with(&self, n1_paused: bool, dead_after: &str) {
        let s = &self.subnet;
        let yaml = format!(
            "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: lab, namespace: test}}
spec:
  members:
    - {{node: n1, priority: 200, address: {s}.1, paused: {n1_paused}}}
    - {{node: n2, priority: 100, address: {s}.2}}
    - {{node: n3, priority: 50, address: {s}.3}}
  heartbeat: {{interval: 50ms, deadAfter: {dead_after}}}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: web, namespace: test}}
spec:
  cluster: lab
  resources:
    - {{name: vip, virtualIP: {{address: {s}.100/24}}}}
"
        );
        self.write_yaml(&yaml);
    }

    /// A second network between the members (bridge `br1`, each member's `eth1` at
    /// `<service subnet>.<node>/24`), apart from the heartbeats' network on eth0: a
    /// service interface can go down while the members still hear each other.
    fn add_service_network(&self) -> Result<(), String> {
        let bridge = format!("{}b", self.prefix);
        ip(&["-n", &bridge, "link", "add", "br1", "type", "bridge"])?;
        ip(&["-n", &bridge, "link", "set", "br1", "up"])?;
        for node in 1..=3 {
            let ns = self.ns(node);
            let veth = format!("s{node}");
            ip(&[
                "-n", &bridge, "link", "add", &veth, "type", "veth", "peer", "name", "eth1",
                "netns", &ns,
            ])?;
            ip(&["-n", &bridge, "link", "set", &veth, "master", "br1", "up"])?;
            let address = format!("{}.{node}/24", self.service_subnet());
            ip(&["-n", &ns, "addr", "add", &address, "dev", "eth1"])?;
            ip(&["-n", &ns, "link", "set", "eth1", "up"])?;
        }
        Ok(())
    }

    fn service_subnet(&self) -> String {
        self.subnet.replacen("10.78.", "10.79.", 1)
    }

    /// The group's VIP on the service network (found by its subnet, no `interface`)
    /// and failback `Immediate`: n1 ranks first and takes the group back when it can.
    fn write_service_config(&self) {
        let s = &self.subnet;
        let vip = format!("{}.100", self.service_subnet());
        let yaml = format!(
            "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: lab, namespace: test}}
spec:
  members:
    - {{node: n1, priority: 200, address: {s}.1}}
    - {{node: n2, priority: 100, address: {s}.2}}
    - {{node: n3, priority: 50, address: {s}.3}}
  heartbeat: {{interval: 50ms, deadAfter: 250ms}}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: web, namespace: test}}
spec:
  cluster: lab
  failback: {{policy: Immediate, stabilizeFor: 1s}}
  resources:
    - {{name: vip, virtualIP: {{address: {vip}/24}}}}
"
        );
        self.write_yaml(&yaml);
    }

    /// Two heartbeat links per member: `address` on eth0 (the VIP's network) and
    /// `additionalAddresses` on eth1 (see [`Lab::add_service_network`]).
    fn write_links_config(&self) {
        let (s, l) = (&self.subnet, self.service_subnet());
        let yaml = format!(
            "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: lab, namespace: test}}
spec:
  members:
    - {{node: n1, priority: 200, address: {s}.1, additionalAddresses: [{l}.1]}}
    - {{node: n2, priority: 100, address: {s}.2, additionalAddresses: [{l}.2]}}
    - {{node: n3, priority: 50, address: {s}.3, additionalAddresses: [{l}.3]}}
  heartbeat: {{interval: 50ms, deadAfter: 250ms}}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: web, namespace: test}}
spec:
  cluster: lab
  resources:
    - {{name: vip, virtualIP: {{address: {s}.100/24}}}}
"
        );
        self.write_yaml(&yaml);
    }

    /// Loads an nftables ruleset in the node's namespace (it goes with the namespace).
    fn nft(&self, node: usize, ruleset: &str) -> Result<(), String> {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e}"))?;
        child
            .stdin
            .take()
            .ok_or("nft: no stdin")?
            .write_all(ruleset.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
        let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The agent's /metrics as scraped inside its namespace (empty when it does not
    /// answer within 2 s).
    fn metrics(&self, node: usize) -> String {
        let url = format!("http://{METRICS}/metrics");
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(node),
                "curl",
                "-s",
                "--max-time",
                "2",
            ])
            .arg(&url)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The value of one sample of the node's /metrics, e.g.
    /// `failover_peer_up{member="n1"}`.
    fn sample(&self, node: usize, series: &str) -> Option<f64> {
        self.metrics(node).lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    fn write_yaml(&self, yaml: &str) {
        // Write then rename, so an agent polling the file never reads half of it.
        let tmp = self.dir.join("cluster.yaml.tmp");
        fs::write(&tmp, yaml).unwrap();
        fs::rename(&tmp, self.config_path()).unwrap();
    }

    fn start(&mut self, node: usize) {
        self.start_with(node, &[]);
    }

    /// Starts the agent of `node` through `wrapper` (a command that execs its arguments).
    fn start_with(&mut self, node: usize, wrapper: &[&str]) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("n{node}.log")))
            .unwrap();
        let config = if self.own_files {
            self.member_config(node)
        } else {
            self.config_path()
        };
        let auth: Vec<std::ffi::OsString> = match &self.key {
            Some(key) => vec!["--key-file".into(), key.into()],
            None => vec!["--insecure-no-auth".into()],
        };
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node)])
            .args(wrapper)
            .arg(env!("CARGO_BIN_EXE_failover"))
            .args(["agent", "--standalone"])
            .arg(&config)
            .args(["--node", &format!("n{node}")])
            .args(auth)
            .args(["--metrics-addr", if self.metrics { METRICS } else { "" }])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.agents[node - 1] = Some(child);
    }

    fn pid(&self, node: usize) -> u32 {
        self.agents[node - 1].as_ref().unwrap().id()
    }

    fn kill(&mut self, node: usize) {
        let mut child = self.agents[node - 1].take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn terminate(&self, node: usize) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid(node).to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM to every agent of `nodes` at once, then each must exit 0 within 5 s
    /// (a graceful leave: groups handed over, VIPs removed).
    fn stop_gracefully(&mut self, nodes: &[usize]) {
        for &node in nodes {
            self.terminate(node);
        }
        for &node in nodes {
            assert_eq!(
                self.wait_exit(node, Duration::from_secs(5)),
                Some(0),
                "n{node}"
            );
        }
    }

    /// Waits for the agent of `node` to exit; returns its exit code.
    fn wait_exit(&mut self, node: usize, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.agents[node - 1].as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.agents[node - 1] = None;
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "agent n{node} did not exit within {within:?}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Whether the node's kernel holds the VIP (an IPv4 VIP sits on loopback as a
    /// /32, so that the agent, not the kernel, answers ARP for it on eth0).
    fn has_vip(&self, node: usize) -> bool {
        self.has_address(node, &self.vip())
    }

    fn has_address(&self, node: usize, address: &str) -> bool {
        let out = ip(&["-n", &self.ns(node), "-o", "addr", "show"]).unwrap();
        out.contains(&format!(" {address}/"))
    }

    /// An IPv4 setting of the node's eth0 (read in its namespace).
    fn ipv4_conf(&self, node: usize, name: &str) -> i32 {
        let path = format!("/proc/sys/net/ipv4/conf/eth0/{name}");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "cat", &path])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// The MAC of the node's eth0.
    #[cfg(feature = "lab")]
    fn mac(&self, node: usize) -> String {
        let out = ip(&["-n", &self.ns(node), "-o", "link", "show", "eth0"]).unwrap();
        let words: Vec<&str> = out.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "link/ether").unwrap();
        words[at + 1].to_owned()
    }

    /// The MACs that answer ARP for the VIP during `ms` milliseconds, asked every
    /// 20 ms from `node`'s namespace by `failover lab probe` (a `lab` build).
    #[cfg(feature = "lab")]
    fn arp_answerers(&self, node: usize, ms: u64) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(node)])
            .arg(env!("CARGO_BIN_EXE_failover"))
            .args(["lab", "probe", "--vip", &self.vip(), "--port", "9"])
            .args(["--interval-ms", "20", "--duration-ms", &ms.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "probe: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
        summary["macs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect()
    }

    fn holders(&self) -> Vec<usize> {
        (1..=3).filter(|&n| self.has_vip(n)).collect()
    }

    fn rss_kib(&self, node: usize) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid(node))).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn logs(&self) -> String {
        (1..=3)
            .map(|n| {
                let text =
                    fs::read_to_string(self.dir.join(format!("n{n}.log"))).unwrap_or_default();
                format!("----- n{n} -----\n{text}")
            })
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in self.agents.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("agent logs:\n{}", self.logs());
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The link gauge of `peer`'s link `link` as another member shows it.
fn link_up(peer: usize, link: usize) -> String {
    format!("failover_heartbeat_link_up{{peer=\"n{peer}\",link=\"{link}\"}}")
}

/// Polls `condition` until it holds; panics after `within`. Returns the time taken.
fn wait_until(
    lab: &Lab,
    what: &str,
    within: Duration,
    condition: impl Fn(&Lab) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if condition(lab) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting until {what}; VIP holders: {:?}",
            lab.holders()
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn vip_follows_the_owner_across_kill_reload_restart_and_graceful_stop() {
    if skipped(&[]) {
        return;
    }
    let mut lab = Lab::new('k');
    lab.write_config(false);
    for node in 1..=3 {
        lab.start(node);
    }

    let t = wait_until(&lab, "the VIP is on n1 only", WAIT, |l| l.holders() == [1]);
    println!("initial placement: VIP on n1 after {t:?}");
    // Let the agents settle, then read the owner's memory use.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.holders(), [1]);
    if let Some(rss) = lab.rss_kib(1) {
        println!("n1 agent VmRSS: {rss} KiB");
    }

    // SIGKILL of the owner: n2 (next by priority) takes over once the death is
    // confirmed; n1's VIP goes away by itself when its lifetime runs out.
    let killed = Instant::now();
    lab.kill(1);
    wait_until(&lab, "n2 holds the VIP", WAIT, |l| l.has_vip(2));
    let takeover = killed.elapsed();
    println!("SIGKILL n1 -> VIP on n2 after {takeover:?}");
    let lifetime = Duration::from_secs(1);
    wait_until(
        &lab,
        "n1's VIP expires",
        lifetime + Duration::from_secs(1),
        |l| !l.has_vip(1),
    );
    println!(
        "SIGKILL n1 -> VIP gone from n1 after {:?}",
        killed.elapsed()
    );
    assert!(!lab.has_vip(3), "n3 must not hold the VIP");

    // An invalid file is refused with its problems named; the cluster runs on.
    lab.write_config_with(false, "10ms");
    let reload = Instant::now();
    while reload.elapsed() < Duration::from_millis(1200) {
        assert_eq!(lab.holders(), [2], "the VIP moved after an invalid file");
        std::thread::sleep(POLL);
    }
    let logs = lab.logs();
    assert!(
        logs.contains("spec.heartbeat.deadAfter: 10ms must be longer than")
            && logs.contains("keeping the running configuration"),
        "the invalid file should have been refused:\n{logs}"
    );

    // A configuration change that keeps n2 the owner must not touch the VIP.
    lab.write_config(true);
    let reload = Instant::now();
    while reload.elapsed() < Duration::from_millis(1500) {
        assert_eq!(lab.holders(), [2], "the VIP moved during a reload");
        std::thread::sleep(POLL);
    }
    let logs = lab.logs();
    assert!(
        logs.matches("applying the new configuration").count() >= 2,
        "n2 and n3 should have reloaded:\n{logs}"
    );

    // n1 returns paused: it votes (so n3 can form a majority later) but owns nothing.
    lab.start(1);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(lab.holders(), [2], "a paused member must not take the VIP");

    // Graceful stop of the owner: n3 (n1 is paused) takes over at once.
    let stopped = Instant::now();
    lab.terminate(2);
    wait_until(&lab, "n3 holds the VIP", WAIT, |l| l.has_vip(3));
    println!("SIGTERM n2 -> VIP on n3 after {:?}", stopped.elapsed());
    assert_eq!(lab.wait_exit(2, Duration::from_secs(5)), Some(0));
    assert_eq!(lab.holders(), [3]);

    // Stop everything: nobody may be left holding the VIP.
    lab.stop_gracefully(&[3, 1]);
    assert_eq!(lab.holders(), Vec::<usize>::new());
    // A graceful exit puts back the ARP settings the agent changed on eth0; the
    // killed n1 could not, and its successor process found them changed already (a
    // crash leaves the node quiet about VIPs its kernel may still hold).
    assert_eq!(
        [1, 2, 3].map(|n| lab.ipv4_conf(n, "arp_ignore")),
        [1, 0, 0],
        "arp_ignore of n1..n3 after exit"
    );
    assert_eq!(
        [1, 2, 3].map(|n| lab.ipv4_conf(n, "arp_announce")),
        [2, 0, 0],
        "arp_announce of n1..n3 after exit"
    );

    let namespaces = lab.namespaces.clone();
    drop(lab);
    let left = ip(&["netns", "list"]).unwrap();
    for ns in namespaces {
        assert!(
            !left
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str())),
            "namespace {ns} left behind"
        );
    }
}

/// A two-member pair with `quorum: witness`: n1 and n2 are the members, and
/// `failover witness` runs in n3's namespace (a third host on the same bridge).
fn write_witness_config(lab: &Lab) {
    lab.write_yaml(&witness_config(lab, WITNESS_PORT));
}

/// The port of the lab's first witness (the heartbeat port, spec.witness's default).
const WITNESS_PORT: u16 = 7707;
/// The port of the lab's second witness, in the same namespace.
const SECOND_WITNESS_PORT: u16 = 7708;

/// The witness pair's configuration, naming the witness on `port` in n3's namespace.
fn witness_config(lab: &Lab, port: u16) -> String {
    let s = &lab.subnet;
    format!(
        "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: pair, namespace: test}}
spec:
  members:
    - {{node: n1, priority: 200, address: {s}.1}}
    - {{node: n2, priority: 100, address: {s}.2}}
  quorum: witness
  witness: {{address: {s}.3, port: {port}}}
  heartbeat: {{interval: 100ms, deadAfter: 500ms}}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: web, namespace: test}}
spec:
  cluster: pair
  resources:
    - {{name: vip, virtualIP: {{address: {s}.100/24}}}}
"
    )
}

/// Starts `failover witness` in n3's namespace, in the agent slot of n3 (so the
/// lab's guard kills it and `logs` shows its log as n3's).
fn start_witness(lab: &mut Lab) {
    start_witness_on(lab, WITNESS_PORT, 3);
}

/// Starts `failover witness` on `port` in n3's namespace, in agent slot `slot`
/// (1-based), logging into n3's log.
fn start_witness_on(lab: &mut Lab, port: u16, slot: usize) {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(lab.dir.join("n3.log"))
        .unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(3)])
        .arg(env!("CARGO_BIN_EXE_failover"))
        .args(["witness", "--listen", &format!("{}.3:{port}", lab.subnet)])
        .args(["--cluster", "test/pair", "--insecure-no-auth"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    lab.agents[slot - 1] = Some(child);
}

/// Whether the witness's log shows a grant to `node` as a new holder.
fn witness_granted(lab: &Lab, node: &str) -> bool {
    let log = fs::read_to_string(lab.dir.join("n3.log")).unwrap_or_default();
    log.lines()
        .any(|l| l.contains("witness vote: new holder") && l.contains(&format!(" node={node} ")))
}

/// Drops (or with `heal`, stops dropping) everything between n1 and n2, in both
/// namespaces; the witness stays reachable from both. The table is the test's own.
fn cut_members(lab: &Lab, heal: bool) {
    for (node, peer) in [(1, 2), (2, 1)] {
        let peer = format!("{}.{peer}", lab.subnet);
        let script = if heal {
            "delete table inet fawitness\n".to_owned()
        } else {
            format!(
                "table inet fawitness {{
  chain input {{ type filter hook input priority 0; ip saddr {peer} drop; }}
  chain output {{ type filter hook output priority 0; ip daddr {peer} drop; }}
}}\n"
            )
        };
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.ns(node), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "nft in n{node}: {script}");
    }
}

/// The VIP holders for `during`, sampled every poll; a sample with two holders is
/// taken again at once before it counts (the namespaces are read one after the
/// other, so one sample can straddle a change), and a confirmed double fails.
/// Returns every holder set seen.
fn watch_holders(lab: &Lab, during: Duration) -> Vec<Vec<usize>> {
    let start = Instant::now();
    let mut seen: Vec<Vec<usize>> = Vec::new();
    while start.elapsed() < during {
        let mut holders = lab.holders();
        if holders.len() > 1 {
            holders = lab.holders();
            assert!(
                holders.len() <= 1,
                "two nodes hold the VIP: {holders:?} after {:?}",
                start.elapsed()
            );
        }
        if !seen.contains(&holders) {
            seen.push(holders);
        }
        std::thread::sleep(POLL);
    }
    seen
}

#[test]
fn a_standalone_pair_breaks_ties_with_failover_witness() {
    if skipped(&["nft"]) {
        return;
    }
    let mut lab = Lab::new('w');
    write_witness_config(&lab);
    start_witness(&mut lab);
    lab.start(1);
    lab.start(2);

    // (a) Both up: n1 (priority 200) owns the VIP, the witness host never does.
    let t = wait_until(&lab, "the VIP is on n1 only", WAIT, |l| l.holders() == [1]);
    println!("witness pair: VIP on n1 after {t:?}");
    assert_eq!(watch_holders(&lab, Duration::from_secs(1)), [vec![1]]);

    // (b) The members lose each other but both reach the witness: the witness
    // grants one of them and only that one holds the VIP. The owner asks one
    // interval before the other, so it normally keeps the VIP; an agent starved of
    // CPU for longer than that (this test shares the machine with the others) may
    // lose the race, a clean handover. Never two holders.
    cut_members(&lab, false);
    let seen = watch_holders(&lab, Duration::from_secs(4));
    assert!(
        seen.iter().all(|holders| holders.len() <= 1),
        "holders while the members were cut apart: {seen:?}"
    );
    cut_members(&lab, true);
    let after_cut = watch_holders(&lab, Duration::from_secs(2));
    let owner = match after_cut.as_slice() {
        [holders] if holders.len() == 1 => holders[0],
        other => panic!("one stable holder after the cut healed, saw {other:?}"),
    };
    println!("witness pair: holders while cut apart {seen:?}; n{owner} owns after the heal");
    assert!(
        witness_granted(&lab, &format!("n{owner}")),
        "the witness should have granted n{owner}:\n{}",
        lab.logs()
    );

    // (c) SIGKILL of the owner: the other takes over through the witness (the
    // owner's hold from the partition ran out while the healed pair did not need
    // the witness).
    let survivor = 3 - owner;
    let killed = Instant::now();
    lab.kill(owner);
    wait_until(&lab, "the survivor holds the VIP", WAIT, |l| {
        l.has_vip(survivor)
    });
    println!(
        "witness pair: SIGKILL n{owner} -> VIP on n{survivor} after {:?}",
        killed.elapsed()
    );
    assert!(
        witness_granted(&lab, &format!("n{survivor}")),
        "the witness should have granted n{survivor}:\n{}",
        lab.logs()
    );
    // The killed agent answers nothing, but its kernel keeps the address until its
    // lifetime (deadAfter rounded up: 1 s) runs out; only then are the holders one.
    wait_until(
        &lab,
        "the killed owner's VIP expires",
        Duration::from_secs(2),
        |l| !l.has_vip(owner),
    );

    // (d) The killed member returns (failback Never: the survivor keeps the VIP);
    // the witness goes down while both members are up: nothing moves.
    lab.start(owner);
    assert_eq!(
        watch_holders(&lab, Duration::from_secs(2)),
        [vec![survivor]]
    );
    lab.kill(3);
    assert_eq!(
        watch_holders(&lab, Duration::from_secs(3)),
        [vec![survivor]],
        "holders with the witness down"
    );

    lab.stop_gracefully(&[2, 1]);
    assert_eq!(lab.holders(), Vec::<usize>::new());
}

#[test]
fn a_node_that_cannot_add_the_vip_hands_the_group_on() {
    if skipped(&["setpriv"]) {
        return;
    }
    let mut lab = Lab::new('f');
    lab.write_config(false);
    // n1 ranks first but runs without CAP_NET_ADMIN: adding the VIP fails there.
    lab.start_with(1, &["setpriv", "--bounding-set=-net_admin"]);
    lab.start(2);
    lab.start(3);
    wait_until(&lab, "n2 holds the VIP", WAIT, |l| l.has_vip(2));
    // Longer than the eligibility recheck (5 s), after which n1 may try again: the
    // group must stay with n2 (failback Never) and n1 must stay healthy.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(6) {
        assert_eq!(lab.holders(), [2]);
        std::thread::sleep(POLL);
    }
    let logs = lab.logs();
    assert!(
        logs.contains("a resource did not come online; the group's resources are offline again, giving the group up here"),
        "n1 should have reported the failed start:\n{logs}"
    );
    lab.stop_gracefully(&[1, 2, 3]);
    assert_eq!(lab.holders(), Vec::<usize>::new());
}

#[cfg(feature = "lab")]
#[test]
fn a_killed_owner_stops_answering_arp_for_the_vip_at_once() {
    if skipped(&[]) {
        return;
    }
    let mut lab = Lab::new('a');
    // deadAfter 2 s: the successor waits 2 s, and the VIP's lifetime (2 s) keeps it in
    // the dead owner's kernel for a while: the window in which two answered before.
    lab.write_config_with(false, "2s");
    for node in 1..=3 {
        lab.start(node);
    }
    wait_until(&lab, "the VIP is on n1 only", WAIT, |l| l.holders() == [1]);
    // The probe asks from n3 with a MAC that is not n3's; n3's eth0 must see replies to it.
    ip(&["-n", &lab.ns(3), "link", "set", "eth0", "promisc", "on"]).unwrap();
    let (n1, n2) = (lab.mac(1), lab.mac(2));
    assert_eq!(
        lab.arp_answerers(3, 300),
        vec![n1.clone()],
        "n1 answers while alive"
    );

    lab.kill(1);
    let killed = Instant::now();
    assert!(
        lab.has_vip(1),
        "n1's kernel still holds the VIP after the kill"
    );
    let silent = lab.arp_answerers(3, 300);
    let asked_for = killed.elapsed();
    assert!(
        lab.has_vip(1) && !lab.has_vip(2),
        "the window must be before the takeover and before the lifetime ran out"
    );
    assert!(
        silent.is_empty(),
        "a dead agent's node answered ARP for the VIP: {silent:?}"
    );
    println!("after SIGKILL of n1: no ARP answer for {asked_for:?} while n1's kernel held the VIP");

    wait_until(&lab, "n2 holds the VIP", WAIT, |l| l.has_vip(2));
    let n1_held = lab.has_vip(1);
    assert_eq!(
        lab.arp_answerers(3, 300),
        vec![n2],
        "only the successor answers"
    );
    println!("after the takeover: only n2 answers (n1's kernel still held the VIP: {n1_held})");
}

#[test]
fn an_owner_whose_vip_interface_goes_down_hands_the_group_over_and_takes_it_back() {
    if skipped(&[]) {
        return;
    }
    let mut lab = Lab::new('i');
    lab.add_service_network().unwrap();
    lab.write_service_config();
    for node in 1..=3 {
        lab.start(node);
    }
    let vip = format!("{}.100", lab.service_subnet());
    let vip = vip.as_str();
    let holders = |l: &Lab| -> Vec<usize> { (1..=3).filter(|&n| l.has_address(n, vip)).collect() };
    // Never two holders, whatever the wait is for. One pass reads the namespaces one
    // after the other, milliseconds apart: a handover between two reads shows the
    // old holder before it released and the new one after it took. So two holders
    // count only when a second pass, in the opposite order, sees both again.
    let only = |want: usize| {
        move |l: &Lab| {
            let now = holders(l);
            if now.len() > 1 {
                let again: Vec<usize> = (1..=3).rev().filter(|&n| l.has_address(n, vip)).collect();
                assert!(
                    again.len() <= 1,
                    "two nodes hold the VIP: {now:?}, then {again:?}"
                );
                return false;
            }
            now == [want]
        }
    };
    wait_until(&lab, "the VIP is on n1 only", WAIT, only(1));
    let bridge = format!("{}b", lab.prefix);

    // Administratively down: n1 cannot host the group and hands it to n2 while the
    // members keep hearing each other on eth0.
    let down = Instant::now();
    ip(&["-n", &lab.ns(1), "link", "set", "eth1", "down"]).unwrap();
    wait_until(&lab, "n2 holds the VIP", WAIT, only(2));
    println!("eth1 of n1 down -> VIP on n2 after {:?}", down.elapsed());
    let back = Instant::now();
    ip(&["-n", &lab.ns(1), "link", "set", "eth1", "up"]).unwrap();
    wait_until(&lab, "n1 holds the VIP again", WAIT, only(1));
    println!(
        "eth1 of n1 up -> VIP back on n1 (failback Immediate) after {:?}",
        back.elapsed()
    );

    // The carrier lost: the bridge side of n1's eth1 goes down.
    let lost = Instant::now();
    ip(&["-n", &bridge, "link", "set", "s1", "down"]).unwrap();
    wait_until(&lab, "n2 holds the VIP", WAIT, only(2));
    println!(
        "carrier of n1's eth1 lost -> VIP on n2 after {:?}",
        lost.elapsed()
    );
    let back = Instant::now();
    ip(&["-n", &bridge, "link", "set", "s1", "up"]).unwrap();
    wait_until(&lab, "n1 holds the VIP again", WAIT, only(1));
    println!(
        "carrier of n1's eth1 back -> VIP back on n1 after {:?}",
        back.elapsed()
    );

    let logs = lab.logs();
    for expected in [
        "the interface of the group's VIP is down",
        "state=\"admin-down\"",
        "state=\"no-carrier\"",
        "interface=eth1",
        "the interface of the group's VIP is up again",
        "InterfaceDown",
    ] {
        assert!(
            logs.contains(expected),
            "{expected:?} missing in the logs:\n{logs}"
        );
    }
    lab.stop_gracefully(&[1, 2, 3]);
    assert!(holders(&lab).is_empty());
}

#[test]
fn a_member_is_alive_while_any_heartbeat_link_carries_its_heartbeats() {
    if skipped(&["nft", "curl"]) {
        return;
    }
    let mut lab = Lab::new('l');
    lab.add_service_network().unwrap();
    lab.write_links_config();
    lab.metrics = true;
    for node in 1..=3 {
        lab.start(node);
    }
    wait_until(&lab, "the VIP is on n1 only", WAIT, |l| l.holders() == [1]);
    wait_until(&lab, "n2 shows both links to n1 up", WAIT, |l| {
        l.sample(2, &link_up(1, 0)) == Some(1.0) && l.sample(2, &link_up(1, 1)) == Some(1.0)
    });
    let bridge = format!("{}b", lab.prefix);

    // (a) Link 1 of n1 cut (its cable: the bridge side of eth1 down): n1 stays
    // alive over link 0, nothing moves, and the link gauge of n1's link 1 drops.
    ip(&["-n", &bridge, "link", "set", "s1", "down"]).unwrap();
    let t = wait_until(&lab, "n2 shows n1's link 1 down", WAIT, |l| {
        l.sample(2, &link_up(1, 1)) == Some(0.0)
    });
    println!("link 1 of n1 cut -> n2's gauge 0 after {t:?}");
    // Several deadAfters later: still one holder, n1, and every peer alive.
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_secs(1) {
        assert_eq!(lab.holders(), [1], "the group moved while link 0 worked");
        std::thread::sleep(POLL * 5);
    }
    for (node, peer) in [(2, 1), (3, 1), (1, 2)] {
        let metrics = lab.metrics(node);
        assert!(
            metrics.contains(&format!("failover_peer_up{{member=\"n{peer}\"}} 1")),
            "n{node} must count n{peer} alive:\n{metrics}"
        );
        assert!(
            metrics.contains(&format!("{} 1", link_up(peer, 0))),
            "n{node}: link 0 to n{peer} up:\n{metrics}"
        );
        assert!(
            metrics.contains(&format!("{} 0", link_up(peer, 1))),
            "n{node}: link 1 to n{peer} down:\n{metrics}"
        );
    }
    // n2 and n3 still hear each other over link 1.
    assert_eq!(lab.sample(2, &link_up(3, 1)), Some(1.0));

    // (b) Link 1 restored: the gauge comes back, nothing moved.
    ip(&["-n", &bridge, "link", "set", "s1", "up"]).unwrap();
    let t = wait_until(&lab, "n2 shows n1's link 1 up again", WAIT, |l| {
        l.sample(2, &link_up(1, 1)) == Some(1.0)
    });
    println!("link 1 of n1 back -> n2's gauge 1 after {t:?}");
    assert_eq!(lab.holders(), [1]);
    // Every heartbeat arrived twice while both links worked: the second copies
    // are no replays.
    for node in 1..=3 {
        let metrics = lab.metrics(node);
        assert!(
            !metrics.contains("reason=\"replayed\""),
            "n{node} counted duplicates over the second link as replays:\n{metrics}"
        );
    }
    let logs = lab.logs();
    for expected in [
        "heartbeat link down",
        "heartbeat link up again",
        "peer=n1",
        "link=1",
    ] {
        assert!(
            logs.contains(expected),
            "{expected:?} missing in the logs:\n{logs}"
        );
    }
    assert!(
        !logs.contains("peer down"),
        "no member died while one link worked:\n{logs}"
    );

    // (c) Both links of the owner cut (its heartbeats dropped on every link): it
    // is dead to the others, fences itself, and n2 takes the group.
    let isolated = Instant::now();
    lab.nft(
        1,
        "table inet links_test {
            chain input { type filter hook input priority 0; udp dport 7707 drop; }
            chain output { type filter hook output priority 0; udp dport 7707 drop; }
        }",
    )
    .unwrap();
    let t = wait_until(&lab, "n2 holds the VIP alone", WAIT, |l| l.holders() == [2]);
    println!("both links of n1 cut -> VIP on n2 after {t:?}");
    assert!(isolated.elapsed() < WAIT);
    assert_eq!(lab.sample(2, "failover_peer_up{member=\"n1\"}"), Some(0.0));

    lab.stop_gracefully(&[1, 2, 3]);
}

/// `failover ctl --standalone FILE --agent ADDR` run in a member's namespace against
/// that member's running agent: the JSON it prints.
fn ctl(lab: &Lab, node: usize, verb: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns(node)])
        .arg(env!("CARGO_BIN_EXE_failover"))
        .args(["ctl", "--standalone"])
        .arg(lab.config_path())
        .args(["--agent", METRICS, "-o", "json"])
        .args(verb)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

#[test]
fn ctl_standalone_reads_a_running_agents_view() {
    if skipped(&[]) {
        return;
    }
    let mut lab = Lab::new('c');
    lab.write_config(false);
    lab.metrics = true;
    for node in 1..=3 {
        lab.start(node);
    }
    wait_until(&lab, "the VIP is on n1 only", WAIT, |l| l.holders() == [1]);
    // The view follows within a second (the agent's /state refresh).
    wait_until(&lab, "n1's status shows it holding web", WAIT, |l| {
        ctl(l, 1, &["status"]).is_ok_and(|s| s["groups"][0]["held"] == true && s["quorate"] == true)
    });
    let status = ctl(&lab, 1, &["status"]).unwrap();
    assert_eq!(status["cluster"], "test/lab", "{status}");
    assert_eq!(status["node"], "n1", "{status}");
    assert_eq!(status["configHash"], status["fileConfigHash"], "{status}");
    assert_eq!(status["groups"][0]["name"], "web", "{status}");
    assert!(status["groups"][0]["epoch"].as_u64() >= Some(1), "{status}");
    assert_eq!(
        status["groups"][0]["owned"]["resources"][0]["state"], "Online",
        "{status}"
    );
    wait_until(&lab, "n2's status shows all three alive", WAIT, |l| {
        ctl(l, 2, &["status"]).is_ok_and(|s| {
            s["members"]
                .as_array()
                .is_some_and(|m| m.iter().all(|m| m["alive"] == true))
                && s["groups"][0]["held"] == false
        })
    });
    // n2's explanation names the owner n1 once its placement has n1 eligible: on a
    // loaded machine its first decision, taken as quorum formed, may still place web
    // on n2 (n1 holds it and keeps it); the view follows within a refresh.
    wait_until(&lab, "n2 explains web with its owner n1", WAIT, |l| {
        ctl(l, 2, &["explain", "web"]).is_ok_and(|e| {
            e["node"] == "n2" && e["explain"].as_str().is_some_and(|w| w.contains("n1"))
        })
    });
    let timeline = ctl(&lab, 1, &["timeline", "web"]).unwrap();
    assert_eq!(timeline["recentTakeovers"][0]["node"], "n1", "{timeline}");

    lab.stop_gracefully(&[1, 2, 3]);
}

/// Runs `failover ARGS` in `node`'s namespace: its exit status and stdout.
fn failover_in(lab: &Lab, node: usize, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns(node)])
        .arg(env!("CARGO_BIN_EXE_failover"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "failover {args:?}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), stdout)
}

#[test]
fn config_push_and_the_standalone_write_verbs_change_every_member() {
    if skipped(&[]) {
        return;
    }
    let mut lab = Lab::new('p');
    let key = lab.dir.join("key");
    fs::write(&key, "a heartbeat key of the push test\n").unwrap();
    let wrong_key = lab.dir.join("wrong-key");
    fs::write(&wrong_key, "another key, not the cluster's one").unwrap();
    lab.write_config(false);
    let first = fs::read_to_string(lab.config_path()).unwrap();
    for node in 1..=3 {
        fs::write(lab.member_config(node), &first).unwrap();
    }
    lab.key = Some(key.clone());
    lab.own_files = true;
    lab.metrics = true;
    for node in 1..=3 {
        lab.start(node);
    }
    wait_until(&lab, "the VIP is on n1 only", WAIT, |l| l.holders() == [1]);
    let files_hold = |l: &Lab, text: &str| {
        (1..=3).all(|n| fs::read_to_string(l.member_config(n)).is_ok_and(|t| t == text))
    };

    // The admin's copy, n1 paused, pushed from n3's host to every member.
    let admin = lab.dir.join("admin.yaml");
    let paused = first.replace("paused: false", "paused: true");
    assert_ne!(paused, first);
    fs::write(&admin, &paused).unwrap();
    let push = |lab: &Lab, file: &PathBuf, key: &PathBuf| {
        let started = Instant::now();
        let (ok, stdout) = failover_in(
            lab,
            3,
            &[
                "config".as_ref(),
                "push".as_ref(),
                file.as_os_str(),
                "--key-file".as_ref(),
                key.as_os_str(),
                "-o".as_ref(),
                "json".as_ref(),
            ],
        );
        let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        (ok, answer, started.elapsed())
    };
    let (ok, answer, took) = push(&lab, &admin, &key);
    println!("config push: every member answered after {took:?}");
    assert!(ok, "{answer}");
    for member in answer["members"].as_array().unwrap() {
        assert_eq!(member["result"], "applied", "{answer}");
    }
    assert!(
        files_hold(&lab, &paused),
        "every member's file is the pushed text"
    );
    let t = wait_until(&lab, "paused n1 hands web to n2", WAIT, |l| {
        l.holders() == [2]
    });
    println!("config push (n1 paused) -> VIP on n2 after {t:?} more");

    // Pushed again: the members run it already; the same text stays.
    let (ok, answer, _) = push(&lab, &admin, &key);
    assert!(ok, "{answer}");
    assert_eq!(answer["members"][0]["result"], "unchanged", "{answer}");

    // Signed with another key: refused by every member, nothing changes.
    let forged = lab.dir.join("forged.yaml");
    fs::write(&forged, &first).unwrap();
    let (ok, answer, _) = push(&lab, &forged, &wrong_key);
    assert!(!ok, "{answer}");
    for member in answer["members"].as_array().unwrap() {
        assert_eq!(member["result"], "refused", "{answer}");
        assert_eq!(member["reason"], "bad_mac", "{answer}");
    }
    assert!(files_hold(&lab, &paused), "a refused push writes nothing");
    assert_eq!(
        lab.sample(1, "failover_config_push_total{outcome=\"bad_mac\"}"),
        Some(1.0)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.holders(), [2], "a refused push moves nothing");

    // The move verb on the live cluster: pushed to every member, then the admin's
    // copy written.
    let started = Instant::now();
    let (ok, _) = failover_in(
        &lab,
        3,
        &[
            "ctl".as_ref(),
            "--standalone".as_ref(),
            admin.as_os_str(),
            "--key-file".as_ref(),
            key.as_os_str(),
            "move".as_ref(),
            "web".as_ref(),
            "n3".as_ref(),
        ],
    );
    assert!(ok);
    let pushed = started.elapsed();
    wait_until(&lab, "web moves to n3", WAIT, |l| l.holders() == [3]);
    println!(
        "ctl move web n3: pushed after {pushed:?}, VIP on n3 after {:?}",
        started.elapsed()
    );
    let moved = fs::read_to_string(&admin).unwrap();
    assert!(moved.contains("owner: n3"), "{moved}");
    assert!(
        files_hold(&lab, &moved),
        "every member's file is the admin's copy"
    );

    lab.stop_gracefully(&[1, 2, 3]);
}

/// Whether `node`'s log has a line containing `text`.
fn logged(lab: &Lab, node: usize, text: &str) -> bool {
    fs::read_to_string(lab.dir.join(format!("n{node}.log")))
        .unwrap_or_default()
        .contains(text)
}

/// A change of witness edited into one member's file, the members cut apart inside
/// the change: the member on the new file needs the old witness too, which the
/// owner holds, so the VIP stays on the owner alone (without the joint rule n2 would
/// win the new witness and add the VIP too). Once both files name the new witness,
/// the change ends and the new witness alone breaks the next tie.
#[test]
fn a_change_of_witness_with_the_members_cut_apart_inside_it_keeps_one_vip_holder() {
    if skipped(&["nft"]) {
        return;
    }
    let mut lab = Lab::new('x');
    // Each member reads its own file, as standalone members do.
    let write_member = |lab: &Lab, node: usize, port: u16| {
        let path = lab.member_config(node);
        let tmp = path.with_extension("yaml.tmp");
        fs::write(&tmp, witness_config(lab, port)).unwrap();
        fs::rename(&tmp, path).unwrap();
    };
    write_member(&lab, 1, WITNESS_PORT);
    write_member(&lab, 2, WITNESS_PORT);
    lab.own_files = true;
    start_witness(&mut lab);
    start_witness_on(&mut lab, SECOND_WITNESS_PORT, 4);
    lab.start(1);
    lab.start(2);
    wait_until(&lab, "the VIP is on n1 only", WAIT, |l| l.holders() == [1]);

    // n2's file alone names the second witness.
    write_member(&lab, 2, SECOND_WITNESS_PORT);
    wait_until(&lab, "n2 begins the change", WAIT, |l| {
        logged(l, 2, "the witness changed")
    });
    // Never two holders (`watch_holders` fails on a double). The owner asks first
    // and keeps the VIP; on a loaded machine n2 may ask first and win both
    // witnesses, and then the VIP moves, but is never on both.
    cut_members(&lab, false);
    let seen = watch_holders(&lab, Duration::from_secs(4));
    println!("witness change: holders while cut apart inside the change: {seen:?}");
    assert_eq!(seen[0], vec![1], "n1 held the VIP when the cut began");
    cut_members(&lab, true);
    watch_holders(&lab, Duration::from_secs(1));

    // n1's file too: both run the second witness, the change ends on both.
    write_member(&lab, 1, SECOND_WITNESS_PORT);
    wait_until(&lab, "the change ends on both", WAIT, |l| {
        [1, 2]
            .iter()
            .all(|&n| logged(l, n, "the old witness no longer counts"))
    });
    // Cut apart again: the second witness alone decides; never two holders
    // (`watch_holders` fails on a double).
    cut_members(&lab, false);
    let seen = watch_holders(&lab, Duration::from_secs(3));
    println!("witness change: holders while cut apart after the change: {seen:?}");
    assert!(
        seen.iter().any(|h| h.len() == 1),
        "someone holds the VIP: {seen:?}"
    );
    cut_members(&lab, true);

    lab.stop_gracefully(&[2, 1]);
}
