//! Failover scenarios and the benchmark loop: for each run, a fresh lab (3 nodes, or
//! a 2-member pair and a witness), echo responders, the implementation under test,
//! the VIP sampler and the probe; inject the scenario's fault; fold the runs into one
//! JSON line.
//!
//! Owns: scenario definitions and the timing-sensitive orchestration (in Rust, so the
//! fault is injected at a known instant while the probe runs). Must never: leave a
//! lab behind (every run's `Lab` tears down on drop) or wait without a bound.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::LabError;
use super::fault::{self, Direction, Filter, Signal};
use super::impls::{
    Impl, SERVICE_CHECK_INTERVAL_MS, ServiceGroup, VIP, broken_marker, witness_log_path,
    write_atomically,
};
use super::load::CpuLoad;
use super::probe::Summary;
use super::sampler::{self, VipSampler};
use super::stats::{self, BenchLine, RunResult, ServiceLog};
use super::topology::{Heartbeats, IFACE, Lab, Topology, cluster_port, node_v4, node_v6};

/// Members of every benchmark cluster without a witness.
pub const NODES: usize = 3;
/// Members of a witness pair (the witness is no member).
pub const PAIR: usize = 2;
/// The reason our agent logs when a group's VIP interface is down on its node.
const INTERFACE_DOWN: &str = "InterfaceDown";
/// Upper bound on runs per scenario.
pub const MAX_RUNS: usize = 1000;

/// What happens to the owner (always n1, the Primary) during the probe. The
/// `witness-*` scenarios run a pair with `quorum: witness` and `failover witness` in
/// a namespace of its own; the `link-cut-*` ones three members heartbeating over two
/// links (the service network and a cluster link, `additionalAddresses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Every process of the owner's namespace gets SIGKILL (the daemon and its
    /// service crash together); the kernel keeps whatever addresses it had.
    KillOwner,
    /// The owner's interface goes down.
    LinkDown,
    /// The owner's daemon gets SIGTERM (planned stop).
    GracefulStop,
    /// The Primary was stopped gracefully before the probe; it restarts during the
    /// probe and takes the VIP back.
    Failback,
    /// The owner is cut off from the other members both ways (clients still reach all).
    Partition,
    /// Packets from the owner to the other members are lost (`loss_pct`).
    OnewayLoss,
    /// The owner is marked paused in the configuration, which is then reloaded.
    PausedMember,
    /// The group runs its service (see `impls::ServiceGroup`); the owner's service
    /// dies and stays broken there (its restarts start broken), the node lives: the
    /// process restart, then the failing health check's restart, then the failover.
    ServiceFailure,
    /// The group runs its service, the VIP on top of it; the owner's agent gets
    /// SIGTERM: the resources go offline in reverse order and come online on the
    /// next member in dependency order.
    ServiceOrder,
    /// Witness pair: every process of the owner's namespace gets SIGKILL; the
    /// survivor needs the witness's vote to take over.
    WitnessKillOwner,
    /// Witness pair: the members are cut off from each other both ways, both still
    /// reach the witness (and the clients): the owner keeps the VIP, the other is
    /// refused the vote.
    WitnessPartition,
    /// Two heartbeat links: the owner's cable to the cluster link is pulled (its
    /// bridge port down); link 0 still carries the heartbeats, nothing moves.
    LinkCutOne,
    /// Two heartbeat links: the owner's cluster-link cable is pulled and its traffic
    /// with the other members on the service network dropped (clients still reach
    /// it): it is dead to them, fences itself, and n2 takes over.
    LinkCutBoth,
}

impl Scenario {
    pub const ALL: [Scenario; 13] = [
        Scenario::KillOwner,
        Scenario::LinkDown,
        Scenario::GracefulStop,
        Scenario::Failback,
        Scenario::Partition,
        Scenario::OnewayLoss,
        Scenario::PausedMember,
        Scenario::ServiceFailure,
        Scenario::ServiceOrder,
        Scenario::WitnessKillOwner,
        Scenario::WitnessPartition,
        Scenario::LinkCutOne,
        Scenario::LinkCutBoth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::KillOwner => "kill-owner",
            Scenario::LinkDown => "link-down",
            Scenario::GracefulStop => "graceful-stop",
            Scenario::Failback => "failback",
            Scenario::Partition => "partition",
            Scenario::OnewayLoss => "oneway-loss",
            Scenario::PausedMember => "paused-member",
            Scenario::ServiceFailure => "service-failure",
            Scenario::ServiceOrder => "service-order",
            Scenario::WitnessKillOwner => "witness-kill-owner",
            Scenario::WitnessPartition => "witness-partition",
            Scenario::LinkCutOne => "link-cut-one",
            Scenario::LinkCutBoth => "link-cut-both",
        }
    }

    /// The lab the scenario runs in.
    pub fn topology(self) -> Topology {
        match self {
            Scenario::WitnessKillOwner | Scenario::WitnessPartition => Topology {
                witness: true,
                ..Topology::plain(PAIR)
            },
            // Where the VIP's interface goes down, the heartbeats take a cluster link
            // of their own, as docs/operations.md advises: losing the service
            // network is then `InterfaceDown`, not a partition.
            Scenario::LinkDown => Topology {
                heartbeats: Heartbeats::ClusterLink,
                ..Topology::plain(NODES)
            },
            Scenario::LinkCutOne | Scenario::LinkCutBoth => Topology {
                heartbeats: Heartbeats::BothLinks,
                ..Topology::plain(NODES)
            },
            _ => Topology::plain(NODES),
        }
    }

    /// Whether the fault SIGKILLs the owner's namespace.
    fn kills_owner(self) -> bool {
        matches!(self, Scenario::KillOwner | Scenario::WitnessKillOwner)
    }

    /// Whether the group runs its own service (the agent starts the echo) rather
    /// than only a VIP in front of echo responders the lab starts on every node.
    pub fn runs_service(self) -> bool {
        matches!(self, Scenario::ServiceFailure | Scenario::ServiceOrder)
    }
}

impl FromStr for Scenario {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, LabError> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| LabError::Invalid {
                what: "scenario".into(),
                detail: format!(
                    "{s:?} (one of {})",
                    Scenario::ALL.map(Scenario::name).join(", ")
                ),
            })
    }
}

/// How to run the benchmark.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The `failover` binary (echo, probe, and our agent).
    pub exe: PathBuf,
    pub runs: usize,
    pub probe_interval: Duration,
    /// Probe time before the fault (the steady state the outage is measured against).
    pub warmup: Duration,
    /// UDP port of the echo responders.
    pub port: u16,
    /// Loss for `oneway-loss`, percent.
    pub loss_pct: u8,
    /// Per-run directories (configs, logs) go below this.
    pub work_dir: PathBuf,
    /// One busy worker per core for the whole of every run (lab set-up included).
    pub cpu_load: bool,
}

/// Runs `scenario` `opts.runs` times against `imp` and folds the results.
pub fn run_bench(
    imp: &Impl,
    scenario: Scenario,
    opts: &BenchOptions,
) -> Result<BenchLine, LabError> {
    imp.check_available(&opts.exe)?;
    if let Some(why) = imp.unsupported(scenario) {
        return Err(LabError::Unavailable {
            name: imp.name(),
            reason: format!("scenario {} does not apply: {why}", scenario.name()),
        });
    }
    let runs = opts.runs.clamp(1, MAX_RUNS);
    let mut results = Vec::new();
    let mut failed = 0;
    for run in 1..=runs {
        match run_once(imp, scenario, opts) {
            Ok(r) => {
                tracing::info!(impl_name = %imp.name(), scenario = scenario.name(), run, outage_ms = r.outage_ms, split_brain = r.split_brain, dual_ms = r.dual_holder_ms, "run done");
                results.push(r);
            }
            Err(e) => {
                tracing::warn!(impl_name = %imp.name(), scenario = scenario.name(), run, error = %e, "run failed");
                failed += 1;
            }
        }
    }
    let mut line = stats::bench_line(&imp.name(), scenario.name(), &results, failed);
    line.cpu_load = opts.cpu_load;
    let topology = scenario.topology();
    line.members = topology.nodes;
    line.witness = topology.witness;
    line.heartbeat_links = topology.heartbeat_links();
    Ok(line)
}

/// Polls until exactly `expected` (namespace names) hold the VIP, or `timeout`.
pub fn wait_for_holders(
    namespaces: &[String],
    expected: &[String],
    timeout: Duration,
) -> Result<(), LabError> {
    let deadline = Instant::now() + timeout;
    let vip = VIP.to_string();
    loop {
        let now = sampler::holders(namespaces, &vip)?;
        if now == expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LabError::Timeout(format!(
                "VIP on {expected:?} (holders: {now:?})"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until each of `vips` is held by exactly one of `namespaces`, or `timeout`;
/// returns the holder of each VIP (namespace name), in the order of `vips`.
pub fn wait_each_held_once(
    namespaces: &[String],
    vips: &[std::net::Ipv4Addr],
    timeout: Duration,
) -> Result<Vec<String>, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut holders = Vec::new();
        for vip in vips {
            holders.push(sampler::holders(namespaces, &vip.to_string())?);
        }
        if holders.iter().all(|h| h.len() == 1) {
            return Ok(holders.into_iter().flatten().collect());
        }
        if Instant::now() >= deadline {
            let detail: Vec<String> = vips
                .iter()
                .zip(&holders)
                .filter(|(_, h)| h.len() != 1)
                .map(|(v, h)| format!("{v} on {h:?}"))
                .collect();
            return Err(LabError::Timeout(format!(
                "every VIP held once ({})",
                detail.join(", ")
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to exit within `timeout`, then returns its whole stdout.
pub fn wait_output(mut child: Child, timeout: Duration) -> Result<String, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LabError::Timeout("the probe to finish".into()));
            }
            Err(e) => return Err(LabError::io("probe process", e)),
        }
    }
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out)
            .map_err(|e| LabError::io("probe stdout", e))?;
    }
    Ok(out)
}

/// Removes the lab and its run directory, which holds configs and logs: kept only
/// when `FAILOVER_LAB_KEEP` is set, to debug a run.
pub fn tear_down(lab: &mut Lab, dir: &Path) -> Result<(), LabError> {
    lab.down()?;
    if std::env::var_os("FAILOVER_LAB_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// The probe's summary: its last non-empty stdout line.
pub fn parse_summary(stdout: &str) -> Result<Summary, LabError> {
    last_json_line(stdout)
}

/// The last non-empty line of a lab helper's stdout, as JSON.
pub fn last_json_line<T: serde::de::DeserializeOwned>(stdout: &str) -> Result<T, LabError> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line).map_err(|source| LabError::ProbeOutput {
        line: line.to_string(),
        source,
    })
}

/// Arguments of `failover lab probe` for the lab VIP.
pub fn probe_args(port: u16, interval: Duration, duration: Duration) -> Vec<String> {
    vec![
        "lab".into(),
        "probe".into(),
        "--vip".into(),
        VIP.to_string(),
        "--port".into(),
        port.to_string(),
        "--interval-ms".into(),
        interval.as_millis().to_string(),
        "--duration-ms".into(),
        duration.as_millis().to_string(),
    ]
}

/// Arguments of `failover lab echo` for node `name`, bounded by `max`.
pub fn echo_args(port: u16, name: &str, max: Duration) -> Vec<String> {
    vec![
        "lab".into(),
        "echo".into(),
        "--port".into(),
        port.to_string(),
        "--name".into(),
        name.into(),
        "--duration-ms".into(),
        max.as_millis().to_string(),
    ]
}

/// The service-network addresses of the members other than n1, of `nodes`.
fn peers_of_owner(nodes: usize) -> Vec<IpAddr> {
    (2..=nodes)
        .flat_map(|i| [IpAddr::V4(node_v4(i)), IpAddr::V6(node_v6(i))])
        .collect()
}

fn run_dir(opts: &BenchOptions, lab: &Lab) -> Result<PathBuf, LabError> {
    let dir = opts.work_dir.join(lab.prefix());
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
    Ok(dir)
}

/// One run on a fresh lab.
pub fn run_once(
    imp: &Impl,
    scenario: Scenario,
    opts: &BenchOptions,
) -> Result<RunResult, LabError> {
    let window = imp.window();
    // Everything in a run is bounded by this; echo responders exit by themselves too.
    let echo_max = Duration::from_secs(120) + window * 4;
    // Started before the lab so that set-up, election and fault all run on busy cores;
    // it stops when the run ends (dropped) or at the run's own bound.
    let _load = opts.cpu_load.then(|| CpuLoad::every_core(echo_max));
    let mut lab = Lab::up_with(&scenario.topology())?;
    let members = lab.nodes();
    let dir = run_dir(opts, &lab)?;
    let jitter = random_below(imp.period());
    // A service failure is repaired in place twice (process, then health check)
    // before the failover: the probe waits for that as well.
    let repairs = if scenario == Scenario::ServiceFailure {
        Duration::from_millis(SERVICE_CHECK_INTERVAL_MS * 20)
    } else {
        Duration::ZERO
    };
    let probe_duration = opts.warmup + imp.period() + window + repairs;
    let nodes = lab.node_namespaces();
    if scenario.runs_service() {
        let service = ServiceGroup {
            exe: opts.exe.clone(),
            dir: dir.clone(),
            port: opts.port,
            http_port: opts.port + 1,
            max: echo_max,
        };
        imp.write_service_config(&dir, &lab, &service)?;
    } else {
        for i in 1..=members {
            let ns = lab.node_ns(i);
            lab.spawn(
                &ns,
                &opts.exe,
                &echo_args(opts.port, &format!("n{i}"), echo_max),
                Some(&dir.join(format!("echo-n{i}.log"))),
            )?;
        }
        imp.write_config(&dir, &lab, &[])?;
    }
    // The witness's restart hold counts from its start: it is up before the members
    // and the fault waits until the hold has passed (else the first request after
    // the fault would be refused and the outage would measure the hold).
    let witness_ready = match lab.witness_ns() {
        Some(_) => {
            imp.start_witness(&mut lab, &dir, &opts.exe)?;
            Some(Instant::now() + imp.witness_hold())
        }
        None => None,
    };
    let mut main_pid = vec![0u32; members + 1];
    for (i, pid) in main_pid.iter_mut().enumerate().skip(1) {
        *pid = imp.start(&mut lab, i, &dir, &opts.exe)?;
    }
    let settle_timeout = Duration::from_secs(30) + window;
    wait_for_holders(&nodes, &nodes[..1], settle_timeout)?;
    // Let the backups see a few adverts/heartbeats from the new owner.
    std::thread::sleep(Duration::from_millis(500));
    if scenario == Scenario::Failback {
        fault::signal(main_pid[1], Signal::Term)?;
        wait_for_holders(&nodes, &nodes[1..2], settle_timeout)?;
        std::thread::sleep(Duration::from_millis(500));
        lab.reap();
    }
    if let Some(ready) = witness_ready {
        std::thread::sleep(ready.saturating_duration_since(Instant::now()));
    }

    let sampler = VipSampler::start(&nodes, &VIP.to_string())?;
    let client = lab.client_ns();
    let probe = lab.spawn_piped(
        &client,
        &opts.exe,
        &probe_args(opts.port, opts.probe_interval, probe_duration),
    )?;
    std::thread::sleep(opts.warmup + jitter);
    let owner = lab.node_ns(1);
    let fault_ms = sampler.now_ms();
    let fault_at = jiff::Timestamp::now();
    match scenario {
        Scenario::KillOwner | Scenario::WitnessKillOwner => {
            let spared = sampler.pids();
            let victims: Vec<u32> = fault::netns_pids(&owner)?
                .into_iter()
                .filter(|p| !spared.contains(p))
                .collect();
            fault::crash_all(&victims)?
        }
        Scenario::LinkDown => fault::set_link(&owner, IFACE, false)?,
        Scenario::GracefulStop => fault::signal(main_pid[1], Signal::Term)?,
        Scenario::Failback => {
            // The lab tracks the new process; nothing signals it during this run.
            imp.start(&mut lab, 1, &dir, &opts.exe)?;
        }
        Scenario::Partition | Scenario::WitnessPartition => fault::apply_filter(
            &owner,
            &Filter {
                peers: peers_of_owner(members),
                direction: Direction::Both,
                loss_pct: 100,
            },
        )?,
        Scenario::OnewayLoss => fault::apply_filter(
            &owner,
            &Filter {
                peers: peers_of_owner(members),
                direction: Direction::Outbound,
                loss_pct: opts.loss_pct,
            },
        )?,
        Scenario::PausedMember => {
            // The agent reloads on file change or SIGHUP; do both, as an operator would.
            imp.write_config(&dir, &lab, &[1])?;
            let pids: Vec<u32> = main_pid.iter().copied().skip(1).collect();
            fault::signal_all(&pids, Signal::Hup)?;
        }
        Scenario::ServiceFailure => {
            // Broken from now on on n1, and the running service dies.
            write_atomically(&broken_marker(&dir, 1), "")?;
            let services: Vec<u32> = fault::netns_pids(&owner)?
                .into_iter()
                .filter(|&pid| is_lab_echo(pid))
                .collect();
            fault::crash_all(&services)?
        }
        Scenario::ServiceOrder => fault::signal(main_pid[1], Signal::Term)?,
        Scenario::LinkCutOne => fault::set_link(&lab.switch_ns(), &cluster_port(1), false)?,
        Scenario::LinkCutBoth => {
            fault::set_link(&lab.switch_ns(), &cluster_port(1), false)?;
            fault::apply_filter(
                &owner,
                &Filter {
                    peers: peers_of_owner(members),
                    direction: Direction::Both,
                    loss_pct: 100,
                },
            )?
        }
    }
    let stdout = wait_output(probe, probe_duration + Duration::from_secs(15));
    let report = sampler.stop();
    let summary = parse_summary(&stdout?)?;
    let stale_vip = scenario
        .kills_owner()
        .then(|| sampler::holds_at_end(&report.timelines[0]));
    // When the old owner (n2 for failback, else n1) gave the VIP up, relative to the
    // fault (a planned move may release it before the successor takes it; a crash
    // may never release it).
    let old_owner = if scenario == Scenario::Failback { 1 } else { 0 };
    let old_owner_release_ms = report
        .timelines
        .get(old_owner)
        .and_then(sampler::released_at)
        .map(|at| at - fault_ms);
    // When another member first held the VIP after the fault: the takeover.
    let takeover_ms = report
        .timelines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != old_owner)
        .filter_map(|(_, t)| sampler::acquired_after(t, fault_ms))
        .min_by(f64::total_cmp)
        .map(|at| at - fault_ms);
    let holding = sampler::holders(&nodes, &VIP.to_string())?;
    let final_holders = (1..=members)
        .filter(|&i| holding.contains(&lab.node_ns(i)))
        .collect();
    let interface_down_logged = (scenario == Scenario::LinkDown
        && matches!(imp, Impl::Failover { .. }))
    .then(|| {
        std::fs::read_to_string(imp.log_path(&dir, 1)).is_ok_and(|log| log.contains(INTERFACE_DOWN))
    });
    let service = (scenario.runs_service() && matches!(imp, Impl::Failover { .. })).then(|| {
        std::fs::read_to_string(imp.log_path(&dir, 1))
            .map(|log| service_log(&log))
            .unwrap_or_default()
    });
    let witness_grants = witness_ready.is_some().then(|| {
        std::fs::read_to_string(witness_log_path(&dir))
            .map(|log| witness_grants(&log))
            .unwrap_or_default()
    });
    // What n2 logged of n1's links: the cut link 1 down, or n1 down altogether.
    let links = (lab.topology().heartbeats == Heartbeats::BothLinks).then(|| {
        std::fs::read_to_string(imp.log_path(&dir, 2))
            .map(|log| link_log(&log, "n1", 1))
            .unwrap_or_default()
    });
    tracing::debug!(?summary, holders = ?report.timelines, "run measured");
    tear_down(&mut lab, &dir)?;
    Ok(RunResult {
        outage_ms: summary.outage_ms,
        recovered: summary.recovered,
        split_brain_arp: summary.split_brain_arp,
        split_brain_udp: summary.split_brain_udp,
        split_brain: summary.split_brain,
        dual_holder_ms: report.dual_holder_ms,
        stale_vip,
        old_owner_release_ms,
        takeover_ms,
        final_holders,
        interface_down_logged,
        service,
        witness_grants,
        link_down_ms: links
            .as_ref()
            .and_then(|l| l.link_down_at)
            .map(|at| at.duration_since(fault_at).as_secs_f64() * 1000.0),
        peer_down_logged: links.map(|l| l.peer_down),
    })
}

/// Whether `pid` runs the lab's echo (`failover lab echo ...`).
fn is_lab_echo(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        args.windows(2).any(|w| w == [&b"lab"[..], &b"echo"[..]])
    })
}

/// What an agent's JSON log says of a group's resources: the supervisor's
/// `resource online`/`resource offline` lines and the repairs.
pub fn service_log(log: &str) -> ServiceLog {
    let mut online: Vec<String> = Vec::new();
    let mut offline_runs: Vec<Vec<String>> = vec![Vec::new()];
    let mut restarted = Vec::new();
    let mut failed_over = None;
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let fields = &entry["fields"];
        let text = |key: &str| fields[key].as_str().unwrap_or_default().to_owned();
        let failure = || format!("{}:{}", text("resource"), text("reason"));
        match fields["message"].as_str().unwrap_or_default() {
            "resource online" => {
                // A new start ends the stop before it.
                if offline_runs.last().is_some_and(|r| !r.is_empty()) {
                    offline_runs.push(Vec::new());
                }
                online.push(text("resource"));
            }
            "resource offline" => {
                if let Some(run) = offline_runs.last_mut() {
                    run.push(text("resource"));
                }
            }
            "resource failed; restarting in place" => restarted.push(failure()),
            "resource failed past its restart limit; the group fails over" => {
                failed_over = Some(failure());
            }
            _ => {}
        }
    }
    let mut first_started = Vec::new();
    for resource in online {
        if first_started.contains(&resource) {
            break;
        }
        first_started.push(resource);
    }
    ServiceLog {
        first_started,
        last_stopped: offline_runs
            .into_iter()
            .rev()
            .find(|r| !r.is_empty())
            .unwrap_or_default(),
        restarted,
        failed_over,
    }
}

/// The nodes a witness's JSON log shows as granted the vote as a new holder, in order.
pub fn witness_grants(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "witness vote: new holder")
        .filter_map(|entry| entry["fields"]["node"].as_str().map(str::to_owned))
        .collect()
}

/// What an agent's JSON log says of one peer's heartbeat links.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinkLog {
    /// When it first logged the link down (`heartbeat link down`).
    pub link_down_at: Option<jiff::Timestamp>,
    /// Whether it logged the peer down (every link silent).
    pub peer_down: bool,
}

/// What `log` (an agent's JSON log) says of link `link` of `peer` and of `peer`.
pub fn link_log(log: &str, peer: &str, link: u64) -> LinkLog {
    let mut out = LinkLog::default();
    for entry in log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
    {
        let fields = &entry["fields"];
        if fields["peer"] != peer {
            continue;
        }
        let message = fields["message"].as_str().unwrap_or_default();
        if message.starts_with("peer down") {
            out.peer_down = true;
        } else if message.starts_with("heartbeat link down") && fields["link"] == link {
            let at = entry["timestamp"].as_str().and_then(|t| t.parse().ok());
            out.link_down_at = out.link_down_at.or(at);
        }
    }
    out
}

/// A duration uniformly spread over `[0, max)` (a random phase, not cryptographic;
/// std's per-process random hash keys plus the clock are entropy enough).
pub fn random_below(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(h.finish() % nanos)
}

/// Default per-run work directory.
pub fn default_work_dir() -> PathBuf {
    Path::new("/tmp").join("failover-lab")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_log_reads_order_repairs_and_the_failover() {
        let line = |message: &str, resource: &str, reason: &str| {
            serde_json::json!({
                "level": "INFO",
                "fields": {"message": message, "group": "vip", "resource": resource, "reason": reason}
            })
            .to_string()
        };
        let log = [
            line("agent started", "", ""),
            line("resource online", "service", ""),
            line("resource online", "vip", ""),
            line("resource online", "check", ""),
            line(
                "resource failed; restarting in place",
                "service",
                "ProcessExited",
            ),
            line("resource offline", "check", ""),
            line("resource offline", "vip", ""),
            line("resource offline", "service", ""),
            line("resource online", "service", ""),
            line("resource online", "vip", ""),
            line("resource online", "check", ""),
            "not json".to_owned(),
            line(
                "resource failed past its restart limit; the group fails over",
                "check",
                "HealthCheckFailed",
            ),
            line("resource offline", "check", ""),
            line("resource offline", "vip", ""),
            line("resource offline", "service", ""),
        ]
        .join("\n");
        assert_eq!(
            service_log(&log),
            ServiceLog {
                first_started: vec!["service".into(), "vip".into(), "check".into()],
                last_stopped: vec!["check".into(), "vip".into(), "service".into()],
                restarted: vec!["service:ProcessExited".into()],
                failed_over: Some("check:HealthCheckFailed".into()),
            }
        );
        assert_eq!(service_log(""), ServiceLog::default());
    }

    #[test]
    fn the_witness_log_reads_its_grants() {
        let log = [
            r#"{"level":"INFO","fields":{"message":"witness started; it grants nothing until the longest hold asked for has passed since now","cluster":"default/lab"}}"#,
            r#"{"level":"INFO","fields":{"message":"witness vote: new holder","cluster":"default/lab","node":"n1","previous":""}}"#,
            "not json",
            r#"{"level":"INFO","fields":{"message":"witness vote: hold expired, free","cluster":"default/lab","node":"n1"}}"#,
            r#"{"level":"INFO","fields":{"message":"witness vote: new holder","cluster":"default/lab","node":"n2","previous":""}}"#,
        ]
        .join("\n");
        assert_eq!(witness_grants(&log), ["n1", "n2"]);
        assert!(witness_grants("").is_empty());
    }

    #[test]
    fn the_agent_log_reads_a_peers_link_and_death() {
        let line = |at: &str, message: &str, peer: &str, link: u64| {
            serde_json::json!({
                "timestamp": at,
                "level": "WARN",
                "fields": {"message": message, "peer": peer, "link": link}
            })
            .to_string()
        };
        let down = "heartbeat link down: no heartbeat of the peer over it within deadAfter";
        let log = [
            line("2026-12-02T15:31:31.5Z", down, "n3", 1),
            line("2026-12-02T15:31:31.6Z", down, "n1", 0),
            line("2026-12-02T15:31:31.8Z", down, "n1", 1),
            "not json".to_owned(),
            line("2026-12-02T15:31:32.8Z", down, "n1", 1),
        ]
        .join("\n");
        let seen = link_log(&log, "n1", 1);
        assert_eq!(
            seen.link_down_at,
            Some("2026-12-02T15:31:31.8Z".parse().unwrap())
        );
        assert!(!seen.peer_down);
        let dead = format!(
            "{log}\n{}",
            line(
                "2026-12-02T15:31:33Z",
                "peer down: no heartbeat within deadAfter",
                "n1",
                0
            )
        );
        assert!(link_log(&dead, "n1", 1).peer_down);
        assert!(!link_log(&dead, "n3", 1).peer_down);
        assert_eq!(link_log("", "n1", 1), LinkLog::default());
    }

    #[test]
    fn random_phase_stays_below_the_period_and_varies() {
        let p = Duration::from_millis(10);
        let draws: Vec<Duration> = (0..50).map(|_| random_below(p)).collect();
        assert!(draws.iter().all(|d| *d < p));
        assert!(draws.iter().any(|d| *d != draws[0]), "not constant");
        assert_eq!(random_below(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>().unwrap(), s);
        }
        assert!("nope".parse::<Scenario>().is_err());
    }

    #[test]
    fn summary_is_the_last_line() {
        let line = r#"{"sent":3,"answered":3,"outage_ms":2.0,"outage_start_ms":0.0,"recovered":true,"before":"n1","after":"n1","first_answer_ms":0.0,"split_brain_arp":0,"split_brain_udp":0,"split_brain":0,"nodes":["n1"],"macs":[]}"#;
        let s = parse_summary(&format!("noise\n{line}\n\n")).unwrap();
        assert_eq!(s.answered, 3);
        assert!(parse_summary("").is_err());
        assert!(parse_summary("{}").is_err());
    }

    #[test]
    fn command_lines() {
        let p = probe_args(7000, Duration::from_millis(2), Duration::from_millis(1500));
        assert_eq!(
            p.join(" "),
            "lab probe --vip 10.77.0.100 --port 7000 --interval-ms 2 --duration-ms 1500"
        );
        let e = echo_args(7000, "n2", Duration::from_secs(60));
        assert_eq!(
            e.join(" "),
            "lab echo --port 7000 --name n2 --duration-ms 60000"
        );
    }

    #[test]
    fn owner_peers_are_the_other_members_in_both_families() {
        let p = peers_of_owner(NODES);
        assert_eq!(p.len(), 4);
        assert!(p.contains(&"10.77.0.12".parse().unwrap()));
        assert!(p.contains(&"fd77::d".parse().unwrap()));
        assert!(!p.contains(&"10.77.0.11".parse().unwrap()));
        assert_eq!(
            peers_of_owner(PAIR),
            [
                "10.77.0.12".parse::<IpAddr>().unwrap(),
                "fd77::c".parse().unwrap()
            ]
        );
    }

    #[test]
    fn witness_and_link_scenarios_have_their_labs() {
        for s in [Scenario::WitnessKillOwner, Scenario::WitnessPartition] {
            assert_eq!((s.topology().nodes, s.topology().witness), (PAIR, true));
        }
        for s in [Scenario::LinkCutOne, Scenario::LinkCutBoth] {
            let t = s.topology();
            assert_eq!(
                (t.nodes, t.heartbeats, t.witness),
                (NODES, Heartbeats::BothLinks, false)
            );
        }
        assert_eq!(Scenario::KillOwner.topology(), Topology::plain(NODES));
        assert_eq!(
            Scenario::LinkDown.topology().heartbeats,
            Heartbeats::ClusterLink
        );
    }
}
