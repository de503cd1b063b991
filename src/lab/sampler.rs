//! Which namespaces hold a VIP, over time: one `ip -n NS -o monitor address` per node
//! namespace streams every address change as it happens (timestamped on arrival),
//! after a snapshot of the current state; the report is the total time during which
//! two or more namespaces held the VIP at once.
//!
//! Owns: the monitor processes (stopped by `stop` or on drop) and the pure timeline
//! arithmetic (tested). Must never: outlive its owner (children are killed on drop).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::LabError;

/// `line` (from `ip -o addr show` or `ip -o monitor address`) mentions address `vip`
/// (bare address, e.g. `10.77.0.100`) as an interface address.
pub fn line_has_address(line: &str, vip: &str) -> bool {
    line.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| (w[0] == "inet" || w[0] == "inet6") && w[1].split('/').next() == Some(vip))
}

/// The VIP state change a monitor line announces, if it concerns `vip`:
/// `Some(true)` added (or renewed), `Some(false)` deleted.
pub fn parse_event(line: &str, vip: &str) -> Option<bool> {
    line_has_address(line, vip).then(|| !line.trim_start().starts_with("Deleted"))
}

/// One namespace's holding of the VIP: (time ms, holds) changes in time order.
pub type Timeline = Vec<(f64, bool)>;

/// Total time in `[0, end_ms]` during which at least two timelines hold (pure).
/// A timeline holds from each `true` change until the next `false` change.
pub fn overlap_ms(timelines: &[Timeline], end_ms: f64) -> f64 {
    let mut events: Vec<(f64, usize, bool)> = Vec::new();
    for (i, t) in timelines.iter().enumerate() {
        for &(at, holds) in t {
            events.push((at.clamp(0.0, end_ms), i, holds));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut state = vec![false; timelines.len()];
    let mut total = 0.0;
    let mut last = 0.0;
    for (at, i, holds) in events {
        if state.iter().filter(|s| **s).count() >= 2 {
            total += at - last;
        }
        last = at;
        state[i] = holds;
    }
    if state.iter().filter(|s| **s).count() >= 2 {
        total += end_ms - last;
    }
    total
}

/// Whether a timeline holds at its end.
pub fn holds_at_end(t: &Timeline) -> bool {
    t.last().is_some_and(|(_, h)| *h)
}

/// Time of the last change to "not holding", if the timeline ends not holding.
pub fn released_at(t: &Timeline) -> Option<f64> {
    match t.last() {
        Some((at, false)) => Some(*at),
        _ => None,
    }
}

/// Time of the first change to "holding" after `from_ms`, if any.
pub fn acquired_after(t: &Timeline, from_ms: f64) -> Option<f64> {
    t.iter()
        .find(|(at, holds)| *holds && *at > from_ms)
        .map(|(at, _)| *at)
}

/// What the sampler saw.
#[derive(Debug, Clone, PartialEq)]
pub struct HolderReport {
    /// Namespace names, in the order given to `start`.
    pub namespaces: Vec<String>,
    pub timelines: Vec<Timeline>,
    pub end_ms: f64,
    pub dual_holder_ms: f64,
}

/// A running sampler.
#[derive(Debug)]
pub struct VipSampler {
    namespaces: Vec<String>,
    t0: Instant,
    children: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
    timelines: Vec<Arc<Mutex<Timeline>>>,
}

impl VipSampler {
    /// Starts watching `vip` (bare address) in each of `namespaces`.
    /// Process ids of the sampler's own monitors. They run inside the namespaces
    /// they watch, so a fault that kills "everything in a namespace" must spare them.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    pub fn start(namespaces: &[String], vip: &str) -> Result<VipSampler, LabError> {
        let t0 = Instant::now();
        let mut s = VipSampler {
            namespaces: namespaces.to_vec(),
            t0,
            children: Vec::new(),
            readers: Vec::new(),
            timelines: Vec::new(),
        };
        for ns in namespaces {
            let mut child = Command::new("ip")
                .args(["-n", ns, "-o", "monitor", "address"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|source| LabError::Spawn {
                    cmd: format!("ip -n {ns} -o monitor address"),
                    source,
                })?;
            let timeline = Arc::new(Mutex::new(Timeline::new()));
            if let Some(out) = child.stdout.take() {
                let (tl, vip) = (timeline.clone(), vip.to_string());
                // Ends when the monitor is killed (EOF), so it is bounded by `stop`.
                s.readers.push(std::thread::spawn(move || {
                    for line in BufReader::new(out).lines() {
                        let Ok(line) = line else { break };
                        let at = t0.elapsed().as_secs_f64() * 1000.0;
                        if let Some(holds) = parse_event(&line, &vip)
                            && let Ok(mut t) = tl.lock()
                        {
                            t.push((at, holds));
                        }
                    }
                }));
            }
            s.children.push(child);
            s.timelines.push(timeline);
        }
        // Let the monitors subscribe before the snapshot, so no change falls between.
        std::thread::sleep(Duration::from_millis(100));
        for (ns, tl) in namespaces.iter().zip(&s.timelines) {
            let holds = super::topology::holds_address(ns, vip)?;
            if let Ok(mut t) = tl.lock() {
                // The snapshot is the state from time 0; changes the monitor reported
                // while we waited are newer and stay after it.
                t.insert(0, (0.0, holds));
            }
        }
        Ok(s)
    }

    /// Milliseconds since the sampler started (to align other measurements).
    pub fn now_ms(&self) -> f64 {
        self.t0.elapsed().as_secs_f64() * 1000.0
    }

    /// Stops the monitors and returns what they saw.
    pub fn stop(mut self) -> HolderReport {
        let end_ms = self.now_ms();
        self.kill_children();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let timelines: Vec<Timeline> = self
            .timelines
            .iter()
            .map(|t| t.lock().map(|t| t.clone()).unwrap_or_default())
            .collect();
        HolderReport {
            namespaces: self.namespaces.clone(),
            dual_holder_ms: overlap_ms(&timelines, end_ms),
            timelines,
            end_ms,
        }
    }

    fn kill_children(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for VipSampler {
    fn drop(&mut self) {
        self.kill_children();
    }
}

/// Current holders of `vip` among `namespaces` (a one-shot poll).
pub fn holders(namespaces: &[String], vip: &str) -> Result<Vec<String>, LabError> {
    let mut out = Vec::new();
    for ns in namespaces {
        if super::topology::holds_address(ns, vip)? {
            out.push(ns.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: &str = "3: eth0    inet 10.77.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever";

    #[test]
    fn parses_monitor_lines() {
        assert_eq!(parse_event(ADD, "10.77.0.100"), Some(true));
        assert_eq!(
            parse_event(&format!("Deleted {ADD}"), "10.77.0.100"),
            Some(false)
        );
        assert_eq!(parse_event(ADD, "10.77.0.10"), None, "no prefix match");
        assert_eq!(
            parse_event(
                "3: eth0    inet 10.77.0.11/24 brd 10.77.0.255",
                "10.77.0.100"
            ),
            None
        );
        assert_eq!(
            parse_event("3: eth0 inet6 fd77::64/64 scope global", "fd77::64"),
            Some(true)
        );
        assert_eq!(parse_event("garbage", "10.77.0.100"), None);
    }

    #[test]
    fn no_overlap_when_handover_is_clean() {
        let a = vec![(0.0, true), (100.0, false)];
        let b = vec![(0.0, false), (100.0, true)];
        assert_eq!(overlap_ms(&[a, b], 200.0), 0.0);
    }

    #[test]
    fn overlap_until_release_or_end() {
        let a = vec![(0.0, true), (150.0, false)];
        let b = vec![(0.0, false), (100.0, true)];
        let c = vec![(0.0, false), (120.0, true)];
        assert_eq!(overlap_ms(&[a.clone(), b.clone()], 300.0), 50.0);
        // a (never released) and b overlap from 100 to the end.
        let stale = vec![(0.0, true)];
        assert_eq!(overlap_ms(&[stale, b.clone()], 300.0), 200.0);
        // Three holders count once, not twice.
        assert_eq!(overlap_ms(&[a, b, c], 300.0), 200.0);
    }

    #[test]
    fn acquisition_after_the_fault_skips_the_snapshot() {
        let t = vec![(0.0, true), (40.0, false), (90.0, true), (95.0, true)];
        assert_eq!(acquired_after(&t, 50.0), Some(90.0));
        assert_eq!(acquired_after(&t, 95.0), None);
        assert_eq!(acquired_after(&vec![(0.0, false)], 0.0), None);
    }

    #[test]
    fn renewals_do_not_break_a_holding() {
        let a = vec![(0.0, true), (10.0, true), (20.0, true)];
        let b = vec![(0.0, true), (30.0, false)];
        assert_eq!(overlap_ms(&[a.clone(), b], 40.0), 30.0);
        assert!(holds_at_end(&a));
        assert_eq!(released_at(&vec![(0.0, true), (5.0, false)]), Some(5.0));
        assert_eq!(released_at(&a), None);
    }
}
