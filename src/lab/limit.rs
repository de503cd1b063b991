//! The failover-limit scenario (issue 12): a group allowed one failover per hour
//! fails over once, and when its owner dies again the group goes Failed — no member
//! runs it, also after the dead member's agent restarts — until the documented
//! standalone clear (the `failover.dev/clear-failures` annotation on the group's
//! document in every member's file, then a reload) lets it run again.
//!
//! Owns: the orchestration and what it observes ([`LimitOutcome`]); the verdict is
//! the caller's (the CI test). Must never: wait without a bound or leave the lab
//! behind (the `Lab` tears down on drop, [`bench::tear_down`] on success).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::LabError;
use super::bench::{self, NODES, wait_each_held_once, wait_for_holders};
use super::fault::{self, Signal};
use super::impls::{
    FailoverTiming, Impl, LimitPolicy, VIP, failover_path, failover_yaml_limited, write_atomically,
};
use super::load::CpuLoad;
use super::sampler;
use super::topology::Lab;

/// The agent's log line when it acts on a new clear-failures value.
const CLEARED_LOG: &str = "failure count cleared";

/// What the scenario saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitOutcome {
    /// Namespaces holding the VIP while the group is Failed and the last owner's
    /// agent is down, sampled once the failover window has passed twice.
    pub holders_before_restart: Vec<String>,
    /// The same once the last owner's agent runs again (the count must survive it),
    /// sampled after twice the failover window; `None` when not restarted.
    pub holders_after_last_owner_restart: Option<Vec<String>>,
    /// The member that runs the group after the clear.
    pub owner_after_clear: usize,
    /// Members whose agent logged that it cleared the failure count.
    pub cleared_on: Vec<usize>,
}

/// Runs the scenario once on a fresh lab under `work_dir`; with `restart_last_owner`
/// the agent of the owner whose death made the group Failed is restarted before the
/// clear.
pub fn run_failover_limit(
    exe: &Path,
    timing: FailoverTiming,
    work_dir: &Path,
    cpu_load: bool,
    restart_last_owner: bool,
) -> Result<LimitOutcome, LabError> {
    let imp = Impl::Failover {
        timing: timing.clone(),
        extra_args: vec![],
    };
    imp.check_available(exe)?;
    let window = imp.window();
    let settle = Duration::from_secs(30) + window;
    let _load = cpu_load.then(|| CpuLoad::every_core(Duration::from_secs(180) + window * 8));
    let mut lab = Lab::up(NODES)?;
    let dir = work_dir.join(lab.prefix());
    std::fs::create_dir_all(&dir).map_err(|e| LabError::Io {
        what: dir.display().to_string(),
        source: e,
    })?;
    let nodes = lab.node_namespaces();
    let mut policy = LimitPolicy {
        max_failovers: 1,
        clear_failures: None,
    };
    // The key file comes with the ordinary config; the limited one replaces it.
    imp.write_config(&dir, &lab, &[])?;
    write_atomically(
        &failover_path(&dir),
        &failover_yaml_limited(NODES, &timing, &policy),
    )?;
    let mut pids = [0u32; NODES + 1];
    for (i, pid) in pids.iter_mut().enumerate().skip(1) {
        *pid = imp.start(&mut lab, i, &dir, exe)?;
    }
    wait_for_holders(&nodes, &nodes[..1], settle)?;

    // Failover 1 of 1: n1's agent dies, n2 (next priority) takes the group.
    fault::signal(pids[1], Signal::Kill)?;
    wait_for_holders(&nodes, &nodes[1..2], settle)?;
    lab.reap();
    // n1 comes back; failback is Never, so nothing moves.
    pids[1] = imp.start(&mut lab, 1, &dir, exe)?;
    std::thread::sleep(window);

    // Failover 2 would exceed the limit: the group goes Failed, no one runs it.
    fault::signal(pids[2], Signal::Kill)?;
    wait_for_holders(&nodes, &[], settle)?;
    lab.reap();
    std::thread::sleep(window * 2);
    let holders_before_restart = sampler::holders(&nodes, &VIP.to_string())?;
    // n2 comes back too: it must learn the count from its peers and stay out as well.
    let holders_after_last_owner_restart = if restart_last_owner {
        pids[2] = imp.start(&mut lab, 2, &dir, exe)?;
        std::thread::sleep(window * 2);
        Some(sampler::holders(&nodes, &VIP.to_string())?)
    } else {
        None
    };

    // The documented standalone clear: the annotation in every member's file (one
    // shared file here), then a reload; SIGHUP as well as the file watch.
    policy.clear_failures = Some(clear_value());
    write_atomically(
        &failover_path(&dir),
        &failover_yaml_limited(NODES, &timing, &policy),
    )?;
    // A member not restarted has a dead pid in `pids`: signal the live ones.
    let live: Vec<u32> = pids[1..]
        .iter()
        .copied()
        .filter(|&p| !fault::exited(p))
        .collect();
    fault::signal_all(&live, Signal::Hup)?;
    let owner_ns = wait_each_held_once(&nodes, &[VIP], settle)?;
    let owner_after_clear = (1..=NODES)
        .find(|&i| owner_ns.first() == Some(&lab.node_ns(i)))
        .unwrap_or(0);
    let cleared_on = (1..=NODES)
        .filter(|&i| {
            std::fs::read_to_string(imp.log_path(&dir, i))
                .is_ok_and(|log| log.contains(CLEARED_LOG))
        })
        .collect();
    tracing::debug!(
        ?holders_before_restart,
        owner_after_clear,
        ?cleared_on,
        "failover limit measured"
    );
    bench::tear_down(&mut lab, &dir)?;
    Ok(LimitOutcome {
        holders_before_restart,
        holders_after_last_owner_restart,
        owner_after_clear,
        cleared_on,
    })
}

/// A new clear-failures value, as the docs advise: a timestamp.
fn clear_value() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs())
        .to_string()
}
