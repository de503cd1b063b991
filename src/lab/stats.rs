//! Statistics over benchmark runs and the one-line JSON the benchmark prints.
//!
//! Owns: min/median/p95/max and the exact shape of a benchmark line. Pure. Must
//! never: invent a value for a run that produced none (no runs → no statistics).

use serde::{Deserialize, Serialize};

/// Summary of a set of measurements (milliseconds), rounded to 0.1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// min / median (mean of the two middle values for an even count) / p95 (nearest
/// rank) / max; `None` for no values. NaN values are ignored.
pub fn stats(values: &[f64]) -> Option<Stats> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    // Nearest-rank percentile: the smallest value with at least 95 % at or below it.
    let rank = (0.95 * n as f64).ceil() as usize;
    let p95 = v[rank.clamp(1, n) - 1];
    Some(Stats {
        min: round1(v[0]),
        median: round1(median),
        p95: round1(p95),
        max: round1(v[n - 1]),
    })
}

/// One benchmark result line: one implementation, one scenario, all its runs.
///
/// The first six fields are the agreed format; the rest explain them:
/// `dual_holder_ms` is the worst run's total time with the VIP configured in two
/// namespaces at once; `split_brain` counts probe intervals (over all runs) in which
/// two MACs answered ARP for the VIP or two nodes answered the probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchLine {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub scenario: String,
    pub runs: usize,
    pub outage_ms: Option<Stats>,
    pub split_brain: u64,
    pub dual_holder_ms: f64,
    /// Of `split_brain`: intervals with two ARP answers (MACs).
    pub split_brain_arp: u64,
    /// Of `split_brain`: intervals with UDP answers from two nodes.
    pub split_brain_udp: u64,
    /// Runs with any split-brain interval.
    pub split_brain_runs: usize,
    /// Runs in which the probe got no answer again before its window ended (their
    /// outage counts up to the end of the window, a lower bound).
    pub unrecovered_runs: usize,
    /// Kill scenarios: runs in which the killed owner still held the VIP at the end.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stale_vip_runs: Option<usize>,
    /// Time from the fault until the old owner's VIP was removed from its node, over
    /// the runs in which it was removed at all.
    pub old_owner_release_ms: Option<Stats>,
    /// Runs that failed before measuring (set-up error, owner never elected).
    pub failed_runs: usize,
    /// Whether every run had one busy worker per core beside it (`--cpu-load`).
    #[serde(default)]
    pub cpu_load: bool,
    /// Time from the fault until another member than the owner at the fault held
    /// the VIP, over the runs in which one did.
    #[serde(default)]
    pub takeover_ms: Option<Stats>,
    /// Runs in which another member took the VIP after the fault.
    #[serde(default)]
    pub takeover_runs: usize,
    /// Members of the cluster (a witness is none).
    #[serde(default)]
    pub members: usize,
    /// Whether the members used `quorum: witness` with `failover witness`.
    #[serde(default)]
    pub witness: bool,
    /// Heartbeat links between the members.
    #[serde(default)]
    pub heartbeat_links: usize,
    /// Link scenarios: time from the fault until a peer's agent logged the cut link
    /// down, over the runs in which it did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub link_down_ms: Option<Stats>,
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub outage_ms: f64,
    pub recovered: bool,
    pub split_brain_arp: u64,
    pub split_brain_udp: u64,
    pub split_brain: u64,
    pub dual_holder_ms: f64,
    /// `Some(true)` when the scenario killed the owner and its VIP stayed.
    pub stale_vip: Option<bool>,
    /// Milliseconds from the fault until the old owner no longer held the VIP.
    pub old_owner_release_ms: Option<f64>,
    /// Milliseconds from the fault until another member first held the VIP.
    pub takeover_ms: Option<f64>,
    /// Nodes (1-based) holding the VIP when the run ended.
    pub final_holders: Vec<usize>,
    /// For `link-down` with our agent: whether the old owner's agent logged the
    /// reason `InterfaceDown` (interface tracking saw its VIP interface go down).
    pub interface_down_logged: Option<bool>,
    /// For the service scenarios: what the old owner's agent logged of the group's
    /// resources.
    pub service: Option<ServiceLog>,
    /// For the witness scenarios: the members the witness granted its vote as a new
    /// holder (from its log), in order.
    pub witness_grants: Option<Vec<String>>,
    /// For the link scenarios: milliseconds from the fault until n2's agent logged
    /// n1's link 1 down (`None`: it did not).
    pub link_down_ms: Option<f64>,
    /// For the link scenarios: whether n2's agent logged n1 `peer down`.
    pub peer_down_logged: Option<bool>,
}

/// What an agent's log says of a group's resources (the service scenarios).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLog {
    /// Resources in the order they first came online.
    pub first_started: Vec<String>,
    /// Resources in the order the last stop of the whole group took them offline.
    pub last_stopped: Vec<String>,
    /// Failures repaired by a restart in place, as `resource:Reason`.
    pub restarted: Vec<String>,
    /// The failure that made the group fail over, as `resource:Reason`.
    pub failed_over: Option<String>,
}

/// Folds run results into the benchmark line (pure).
pub fn bench_line(
    implementation: &str,
    scenario: &str,
    results: &[RunResult],
    failed_runs: usize,
) -> BenchLine {
    let outages: Vec<f64> = results.iter().map(|r| r.outage_ms).collect();
    let stale: Vec<bool> = results.iter().filter_map(|r| r.stale_vip).collect();
    let takeovers: Vec<f64> = results.iter().filter_map(|r| r.takeover_ms).collect();
    BenchLine {
        implementation: implementation.to_string(),
        scenario: scenario.to_string(),
        runs: results.len(),
        outage_ms: stats(&outages),
        split_brain: results.iter().map(|r| r.split_brain).sum(),
        dual_holder_ms: round1(results.iter().map(|r| r.dual_holder_ms).fold(0.0, f64::max)),
        split_brain_arp: results.iter().map(|r| r.split_brain_arp).sum(),
        split_brain_udp: results.iter().map(|r| r.split_brain_udp).sum(),
        split_brain_runs: results.iter().filter(|r| r.split_brain > 0).count(),
        unrecovered_runs: results.iter().filter(|r| !r.recovered).count(),
        stale_vip_runs: (!stale.is_empty()).then(|| stale.iter().filter(|s| **s).count()),
        old_owner_release_ms: stats(
            &results
                .iter()
                .filter_map(|r| r.old_owner_release_ms)
                .collect::<Vec<_>>(),
        ),
        failed_runs,
        cpu_load: false,
        takeover_ms: stats(&takeovers),
        takeover_runs: takeovers.len(),
        members: 0,
        witness: false,
        heartbeat_links: 0,
        link_down_ms: stats(
            &results
                .iter()
                .filter_map(|r| r.link_down_ms)
                .collect::<Vec<_>>(),
        ),
    }
}

/// The line as one JSON object (no trailing newline).
pub fn to_json_line(line: &BenchLine) -> String {
    // Serializing plain numbers and strings cannot fail; fall back to a JSON error
    // object rather than panicking if it ever did.
    serde_json::to_string(line).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count() {
        let s = stats(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.min, s.median, s.p95, s.max), (1.0, 3.0, 5.0, 5.0));
    }

    #[test]
    fn even_count_median_is_mean_of_middle() {
        let s = stats(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
    }

    #[test]
    fn p95_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(stats(&v).unwrap().p95, 19.0);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(stats(&v).unwrap().p95, 95.0);
        assert_eq!(stats(&[7.0]).unwrap().p95, 7.0);
    }

    #[test]
    fn empty_and_nan() {
        assert_eq!(stats(&[]), None);
        assert_eq!(stats(&[f64::NAN]), None);
        assert_eq!(stats(&[f64::NAN, 2.0]).unwrap().max, 2.0);
    }

    #[test]
    fn rounds_to_a_tenth() {
        assert_eq!(stats(&[1.26]).unwrap().min, 1.3);
    }

    fn run(outage: f64, sb: u64, dual: f64, stale: Option<bool>, recovered: bool) -> RunResult {
        RunResult {
            outage_ms: outage,
            recovered,
            split_brain_arp: sb,
            split_brain_udp: 0,
            split_brain: sb,
            dual_holder_ms: dual,
            stale_vip: stale,
            old_owner_release_ms: stale.filter(|s| !s).map(|_| 4.0),
            takeover_ms: recovered.then_some(outage + 1.0),
            final_holders: vec![],
            interface_down_logged: None,
            service: None,
            witness_grants: None,
            link_down_ms: None,
            peer_down_logged: None,
        }
    }

    #[test]
    fn line_has_the_agreed_shape() {
        let results = [
            run(30.0, 0, 0.0, Some(true), true),
            run(40.0, 2, 12.5, Some(true), true),
            run(35.0, 0, 3.0, Some(false), false),
        ];
        let line = bench_line("keepalived-advert0.01", "kill-owner", &results, 1);
        let json = to_json_line(&line);
        assert!(
            json.starts_with(
                r#"{"impl":"keepalived-advert0.01","scenario":"kill-owner","runs":3,"outage_ms":{"min":30.0,"median":35.0,"p95":40.0,"max":40.0},"split_brain":2,"dual_holder_ms":12.5,"#
            ),
            "{json}"
        );
        assert!(json.contains(r#""stale_vip_runs":2"#), "{json}");
        assert!(json.contains(r#""unrecovered_runs":1"#), "{json}");
        assert!(json.contains(r#""split_brain_runs":1"#), "{json}");
        assert!(json.contains(r#""failed_runs":1"#), "{json}");
        assert!(json.contains(r#""takeover_runs":2"#), "{json}");
        assert_eq!(
            line.takeover_ms.unwrap().max,
            41.0,
            "only the runs with a takeover"
        );
        assert_eq!(
            line.old_owner_release_ms.unwrap().max,
            4.0,
            "only the run that released"
        );
        let back: BenchLine = serde_json::from_str(&json).unwrap();
        assert_eq!(back, line);
    }

    #[test]
    fn no_runs_no_numbers() {
        let line = bench_line("x", "y", &[], 3);
        assert_eq!(line.outage_ms, None);
        assert_eq!(line.stale_vip_runs, None);
        assert!(to_json_line(&line).contains(r#""outage_ms":null"#));
    }
}
