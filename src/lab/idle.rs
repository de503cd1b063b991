//! An idle cluster, watched: three agents run undisturbed for a while, and any
//! ownership activity after they settled (a peer declared down, a claim, a fence) is
//! a false failover. Also reports what an idle agent costs: resident memory and CPU.
//!
//! Nothing polls the namespaces while it runs (that would disturb the timing being
//! judged): activity is read from the agents' own JSON logs at the end, cost from
//! /proc.

use std::path::Path;
use std::time::{Duration, Instant};

use super::bench::{tear_down, wait_for_holders};
use super::impls::{FailoverTiming, Impl};
use super::load::CpuLoad;
use super::{Lab, LabError};

/// What an idle run found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IdleReport {
    pub scenario: &'static str,
    pub seconds: u64,
    pub interval_ms: u64,
    pub dead_after_ms: u64,
    pub realtime_priority: Option<u8>,
    /// Whether one busy worker per core ran beside the agents the whole time.
    pub cpu_load: bool,
    /// Peer-down detections, claims and fences after the cluster settled.
    pub false_failovers: u64,
    pub peer_down_events: u64,
    /// Per agent, n1..n3.
    pub rss_kib: Vec<u64>,
    pub cpu_percent: Vec<f64>,
}

/// Log messages that mean ownership moved or was about to.
const ACTIVITY: [&str; 3] = ["claiming the group", "fencing", "handing the group over"];

/// Counts (peer-down lines, ownership-activity lines) in a JSON log after `settled`
/// (Unix seconds). Pure.
pub fn activity(log: &str, settled: f64) -> (u64, u64) {
    let mut downs = 0;
    let mut moves = 0;
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let at = entry["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_microsecond() as f64 / 1e6);
        if at.is_none_or(|t| t < settled) {
            continue;
        }
        let message = entry["fields"]["message"].as_str().unwrap_or_default();
        if message.starts_with("peer down") {
            downs += 1;
        }
        if ACTIVITY.iter().any(|a| message.starts_with(a)) {
            moves += 1;
        }
    }
    (downs, moves)
}

/// CPU ticks (user + system) of a process, from /proc/PID/stat.
pub fn cpu_ticks(pid: u32) -> Result<u64, LabError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| LabError::io(format!("/proc/{pid}/stat"), e))?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat; here 0-based after the state (field 3).
    Ok(field(11) + field(12))
}

/// Resident memory of a process in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> Result<u64, LabError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| LabError::io(format!("/proc/{pid}/status"), e))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn unix_now() -> f64 {
    jiff::Timestamp::now().as_microsecond() as f64 / 1e6
}

/// Runs three agents idle for `length` and reports; with `cpu_load`, one busy worker
/// per core runs beside them from before the lab is built until the report.
pub fn run(
    exe: &Path,
    timing: FailoverTiming,
    length: Duration,
    cpu_load: bool,
    work_dir: &Path,
) -> Result<IdleReport, LabError> {
    let imp = Impl::parse("failover", timing.clone(), vec![])?;
    // Bounded: the settle wait (30 s), a second, the run itself and a margin.
    let load = cpu_load.then(|| CpuLoad::every_core(length + Duration::from_secs(60)));
    let mut lab = Lab::up(3)?;
    let dir = work_dir.join(lab.prefix());
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
    let result = (|| {
        imp.write_config(&dir, &lab, &[])?;
        let mut pids = Vec::new();
        for i in 1..=3 {
            pids.push(imp.start(&mut lab, i, &dir, exe)?);
        }
        let nodes = lab.node_namespaces();
        wait_for_holders(&nodes, &nodes[..1], Duration::from_secs(30))?;
        std::thread::sleep(Duration::from_secs(1));
        let settled = unix_now();
        let ticks_before: Vec<u64> = pids
            .iter()
            .map(|&p| cpu_ticks(p))
            .collect::<Result<_, _>>()?;
        let started = Instant::now();
        std::thread::sleep(length);
        let elapsed = started.elapsed().as_secs_f64();
        let ticks_after: Vec<u64> = pids
            .iter()
            .map(|&p| cpu_ticks(p))
            .collect::<Result<_, _>>()?;
        let rss: Vec<u64> = pids.iter().map(|&p| rss_kib(p)).collect::<Result<_, _>>()?;
        // Clock ticks per second: 100 on every Linux this runs on (USER_HZ).
        let cpu: Vec<f64> = ticks_before
            .iter()
            .zip(&ticks_after)
            .map(|(b, a)| ((a - b) as f64 / 100.0 / elapsed * 1000.0).round() / 10.0)
            .collect();
        let (mut downs, mut moves) = (0, 0);
        for i in 1..=3 {
            let log = std::fs::read_to_string(dir.join(format!("{}-n{i}.log", imp.name())))
                .map_err(|e| LabError::io(format!("log of n{i}"), e))?;
            let (d, m) = activity(&log, settled);
            downs += d;
            moves += m;
        }
        Ok(IdleReport {
            scenario: "idle",
            seconds: length.as_secs(),
            interval_ms: timing.interval_ms,
            dead_after_ms: timing.dead_after_ms,
            realtime_priority: timing.realtime_priority,
            cpu_load,
            false_failovers: moves,
            peer_down_events: downs,
            rss_kib: rss,
            cpu_percent: cpu,
        })
    })();
    drop(load);
    tear_down(&mut lab, &dir)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_counts_only_after_settling() {
        let log = r#"{"timestamp":"2026-11-22T00:00:01Z","fields":{"message":"claiming the group"}}
{"timestamp":"2026-11-22T00:00:05Z","fields":{"message":"peer down: no heartbeat within deadAfter"}}
{"timestamp":"2026-11-22T00:00:05.1Z","fields":{"message":"claiming the group"}}
{"timestamp":"2026-11-22T00:00:06Z","fields":{"message":"fencing: votes about to lapse"}}
{"timestamp":"2026-11-22T00:00:07Z","fields":{"message":"peer up"}}"#;
        let settled: jiff::Timestamp = "2026-11-22T00:00:02Z".parse().unwrap();
        let (downs, moves) = activity(log, settled.as_microsecond() as f64 / 1e6);
        assert_eq!((downs, moves), (1, 2));
    }
}
