//! Soak: a large cluster (default 9 members, 20 groups) left running at a given
//! timing for minutes, its agents' CPU and resident memory sampled from /proc over
//! time; the report compares the first minute with the last one, so a leak or a
//! creeping cost shows as growth.
//!
//! Like `idle`, nothing polls the namespaces while it runs: ownership activity is
//! read from the agents' JSON logs at the end, and the end state (every VIP held by
//! exactly one member) is checked once. Must never: run unbounded (minutes are capped)
//! or leave its lab behind.

use std::path::Path;
use std::time::{Duration, Instant};

use super::bench::{tear_down, wait_each_held_once};
use super::idle::{activity, cpu_ticks, rss_kib};
use super::impls::{FailoverTiming, Impl, MAX_GROUPS, group_vip};
use super::{Lab, LabError};

/// Longest soak accepted.
pub const MAX_MINUTES: u64 = 24 * 60;
/// How often CPU and memory are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on every Linux this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// What to soak.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub minutes: u64,
    pub members: usize,
    pub groups: usize,
    pub timing: FailoverTiming,
}

/// One sample of every agent: seconds since the start, CPU ticks and RSS per agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at_s: f64,
    pub ticks: Vec<u64>,
    pub rss_kib: Vec<u64>,
}

/// The soak's JSON line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SoakReport {
    pub scenario: &'static str,
    pub minutes: u64,
    pub members: usize,
    pub groups: usize,
    pub interval_ms: u64,
    pub dead_after_ms: u64,
    pub samples: usize,
    /// Per agent (n1..): mean RSS over the samples of the first and of the last minute.
    pub rss_kib_first_minute: Vec<u64>,
    pub rss_kib_last_minute: Vec<u64>,
    /// Largest last-minus-first RSS of any agent (negative: it shrank).
    pub rss_growth_kib_max: i64,
    /// Per agent: CPU used during the first and during the last minute, percent of a core.
    pub cpu_percent_first_minute: Vec<f64>,
    pub cpu_percent_last_minute: Vec<f64>,
    /// Claims, fences and handovers after the cluster settled (there was no fault).
    pub false_failovers: u64,
    pub peer_down_events: u64,
    /// VIPs not held by exactly one member at the end.
    pub vips_not_held_once: usize,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Folds the samples into (RSS first, RSS last, CPU % first, CPU % last) per agent
/// (pure). The first minute is `[0, 60 s]` of the samples, the last one is the 60 s
/// before the last sample; with less than a minute of samples both are the whole run.
pub fn fold(samples: &[Sample]) -> (Vec<u64>, Vec<u64>, Vec<f64>, Vec<f64>) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Default::default();
    };
    let agents = first.ticks.len();
    let first_end = first.at_s + 60.0;
    let last_start = last.at_s - 60.0;
    let in_first: Vec<&Sample> = samples.iter().filter(|s| s.at_s <= first_end).collect();
    let in_last: Vec<&Sample> = samples.iter().filter(|s| s.at_s >= last_start).collect();
    let mean_rss = |set: &[&Sample], i: usize| {
        let sum: u64 = set
            .iter()
            .map(|s| s.rss_kib.get(i).copied().unwrap_or(0))
            .sum();
        sum / set.len().max(1) as u64
    };
    let cpu = |set: &[&Sample], i: usize| {
        let (Some(a), Some(b)) = (set.first(), set.last()) else {
            return 0.0;
        };
        let secs = b.at_s - a.at_s;
        if secs <= 0.0 {
            return 0.0;
        }
        let ticks = b.ticks.get(i).copied().unwrap_or(0) - a.ticks.get(i).copied().unwrap_or(0);
        round1(ticks as f64 / TICKS_PER_SECOND / secs * 100.0)
    };
    (
        (0..agents).map(|i| mean_rss(&in_first, i)).collect(),
        (0..agents).map(|i| mean_rss(&in_last, i)).collect(),
        (0..agents).map(|i| cpu(&in_first, i)).collect(),
        (0..agents).map(|i| cpu(&in_last, i)).collect(),
    )
}

fn unix_now() -> f64 {
    jiff::Timestamp::now().as_microsecond() as f64 / 1e6
}

/// Runs the soak and reports.
pub fn run(exe: &Path, opts: &SoakOptions, work_dir: &Path) -> Result<SoakReport, LabError> {
    if opts.minutes == 0 || opts.minutes > MAX_MINUTES {
        return Err(LabError::Invalid {
            what: "minutes".into(),
            detail: format!("{} (1..={MAX_MINUTES})", opts.minutes),
        });
    }
    if opts.groups == 0 || opts.groups > MAX_GROUPS {
        return Err(LabError::Invalid {
            what: "groups".into(),
            detail: format!("{} (1..={MAX_GROUPS})", opts.groups),
        });
    }
    let imp = Impl::parse("failover", opts.timing.clone(), vec![])?;
    imp.check_available(exe)?;
    let mut lab = Lab::up(opts.members)?;
    let dir = work_dir.join(lab.prefix());
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
    let vips: Vec<_> = (1..=opts.groups).map(group_vip).collect();
    let result = (|| {
        imp.write_config_groups(&dir, &lab, &[], opts.groups)?;
        let mut pids = Vec::new();
        for i in 1..=opts.members {
            pids.push(imp.start(&mut lab, i, &dir, exe)?);
        }
        let nodes = lab.node_namespaces();
        wait_each_held_once(&nodes, &vips, Duration::from_secs(60))?;
        std::thread::sleep(Duration::from_secs(2));
        let settled = unix_now();
        let started = Instant::now();
        let length = Duration::from_secs(opts.minutes * 60);
        let mut samples = Vec::new();
        // Bounded: one sample per SAMPLE_EVERY until `length`, plus the last one.
        loop {
            let ticks = pids
                .iter()
                .map(|&p| cpu_ticks(p))
                .collect::<Result<_, _>>()?;
            let rss = pids.iter().map(|&p| rss_kib(p)).collect::<Result<_, _>>()?;
            samples.push(Sample {
                at_s: started.elapsed().as_secs_f64(),
                ticks,
                rss_kib: rss,
            });
            let elapsed = started.elapsed();
            if elapsed >= length {
                break;
            }
            std::thread::sleep(SAMPLE_EVERY.min(length - elapsed));
        }
        let (rss_first, rss_last, cpu_first, cpu_last) = fold(&samples);
        let growth = rss_first
            .iter()
            .zip(&rss_last)
            .map(|(a, b)| *b as i64 - *a as i64)
            .max()
            .unwrap_or(0);
        let (mut downs, mut moves) = (0, 0);
        for i in 1..=opts.members {
            let log = std::fs::read_to_string(dir.join(format!("{}-n{i}.log", imp.name())))
                .map_err(|e| LabError::io(format!("log of n{i}"), e))?;
            let (d, m) = activity(&log, settled);
            downs += d;
            moves += m;
        }
        let mut not_once = 0;
        for vip in &vips {
            if super::sampler::holders(&nodes, &vip.to_string())?.len() != 1 {
                not_once += 1;
            }
        }
        Ok(SoakReport {
            scenario: "soak",
            minutes: opts.minutes,
            members: opts.members,
            groups: opts.groups,
            interval_ms: opts.timing.interval_ms,
            dead_after_ms: opts.timing.dead_after_ms,
            samples: samples.len(),
            rss_kib_first_minute: rss_first,
            rss_kib_last_minute: rss_last,
            rss_growth_kib_max: growth,
            cpu_percent_first_minute: cpu_first,
            cpu_percent_last_minute: cpu_last,
            false_failovers: moves,
            peer_down_events: downs,
            vips_not_held_once: not_once,
        })
    })();
    tear_down(&mut lab, &dir)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_s: f64, ticks: u64, rss: u64) -> Sample {
        Sample {
            at_s,
            ticks: vec![ticks, 2 * ticks],
            rss_kib: vec![rss, 1000],
        }
    }

    #[test]
    fn first_and_last_minute_are_compared() {
        // 3 minutes, a sample every 30 s; agent 0 grows 100 KiB per sample.
        let samples: Vec<Sample> = (0..=6)
            .map(|k| sample(k as f64 * 30.0, k * 300, 5000 + k * 100))
            .collect();
        let (rf, rl, cf, cl) = fold(&samples);
        // First minute: samples at 0, 30, 60 s; last minute: 120, 150, 180 s.
        assert_eq!(rf, vec![5100, 1000]);
        assert_eq!(rl, vec![5500, 1000]);
        // 600 ticks in 60 s = 6 s of CPU = 10 %; the second agent uses twice that.
        assert_eq!(cf, vec![10.0, 20.0]);
        assert_eq!(cl, vec![10.0, 20.0]);
    }

    #[test]
    fn no_samples_fold_to_nothing() {
        assert_eq!(fold(&[]), Default::default());
        let one = fold(&[sample(0.0, 5, 10)]);
        assert_eq!(one.0, vec![10, 1000]);
        assert_eq!(one.2, vec![0.0, 0.0]);
    }
}
