//! `failover demo`: the product in one command. Builds a three-node cluster of
//! network namespaces on one bridge, starts one agent per node with one group — a
//! service (a process the owner's agent runs), the VIP on top of it and an HTTP
//! health check — shows who owns it, kills the owner (SIGKILL of everything in its
//! namespace, as a crashed node), and prints the failover timeline (the group coming
//! online on the successor, resource by resource), the outage a client measured,
//! and that the dead node's VIP went away by itself. Everything it creates is
//! removed at the end.
//!
//! It owns only orchestration and printing; the lab pieces (topology, echo, probe,
//! faults) are the ones the benchmarks use.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bench::{parse_summary, probe_args, wait_for_holders, wait_output};
use super::impls::{FailoverTiming, Impl, ServiceGroup, VIP};
use super::topology;
use super::{Lab, LabError, fault};

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub exe: PathBuf,
    pub timing: FailoverTiming,
    pub probe_interval: Duration,
    pub echo_port: u16,
}

/// One step of the failover timeline, from the successor's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Milliseconds after the owner was killed.
    pub at_ms: f64,
    pub what: String,
}

/// The log lines of the successor that make up a takeover — message prefix, the
/// resource it names (if any) — and how to name them.
const TIMELINE: [(&str, Option<&str>, &str); 6] = [
    (
        "peer down",
        None,
        "detected: no heartbeat from the owner within deadAfter",
    ),
    (
        "claiming the group",
        None,
        "decided: placement picks this node, it asks for votes",
    ),
    (
        "a majority voted for this node",
        None,
        "won the vote (the ledger: a majority)",
    ),
    (
        "resource online",
        Some("service"),
        "service started (a process of the agent)",
    ),
    (
        "resource online",
        Some("vip"),
        "VIP added (netlink, finite lifetime)",
    ),
    (
        "resource online",
        Some("check"),
        "health check probing the service through the VIP",
    ),
];

/// The message of the agent's one line per takeover, and its fields (milliseconds
/// since the detection) that the resource lines do not show, and how to name them.
const TAKEOVER_LINE: &str = "takeover timeline";
const TAKEOVER_PHASES: [(&str, &str); 2] = [
    ("arp_sent_ms", "gratuitous ARP sent"),
    ("online_ms", "group online: every resource up"),
];

/// Picks the takeover steps out of an agent's JSON log, relative to `killed_at`
/// (Unix time in seconds): the steps logged as they happen, then the phases of the
/// takeover's timeline line, placed after the detection they are timed from. Pure,
/// so it is tested without a lab.
pub fn timeline(log: &str, killed_at: f64) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut detected_ms = None;
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let fields = &entry["fields"];
        let message = fields["message"].as_str().unwrap_or_default();
        let resource = fields["resource"].as_str();
        let Some(at) = entry["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        else {
            continue;
        };
        let at_ms = (at.as_microsecond() as f64 / 1e6 - killed_at) * 1000.0;
        if at_ms < 0.0 {
            continue;
        }
        for (prefix, named, what) in TIMELINE {
            let first = !steps.iter().any(|s: &Step| s.what == what);
            let names = named.is_none_or(|r| resource == Some(r));
            if message.starts_with(prefix) && names && first {
                if prefix == TIMELINE[0].0 {
                    detected_ms = Some(at_ms);
                }
                steps.push(Step {
                    at_ms,
                    what: what.to_string(),
                });
            }
        }
        let Some(detected) = detected_ms else {
            continue;
        };
        if message != TAKEOVER_LINE || fields["from"] != "detection" {
            continue;
        }
        for (field, what) in TAKEOVER_PHASES {
            let first = !steps.iter().any(|s| s.what == what);
            if let Some(ms) = fields[field].as_f64().filter(|_| first) {
                steps.push(Step {
                    at_ms: detected + ms,
                    what: what.to_string(),
                });
            }
        }
    }
    // The timeline line's phases come after the lines they happened between.
    steps.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    steps
}

fn unix_now() -> f64 {
    jiff::Timestamp::now().as_microsecond() as f64 / 1e6
}

fn say(text: &str) {
    println!("{text}");
}

/// Runs the demo, printing as it goes. Returns the measured outage in ms.
pub fn run(opts: &DemoOptions) -> Result<f64, LabError> {
    topology::check_prerequisites().map_err(|detail| LabError::Invalid {
        what: "machine for the demo".into(),
        detail: format!("{detail}; run it as root on Linux with iproute2 installed"),
    })?;
    let imp = Impl::parse("failover", opts.timing.clone(), vec![])?;
    let mut lab = Lab::up(3)?;
    let dir = std::env::temp_dir().join(format!("failover-demo-{}", lab.prefix()));
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
    let result = demo_in(&mut lab, &dir, &imp, opts);
    lab.down()?;
    let _ = std::fs::remove_dir_all(&dir);
    say("cleaned up: namespaces, processes and files of the demo are gone");
    result
}

fn demo_in(lab: &mut Lab, dir: &Path, imp: &Impl, opts: &DemoOptions) -> Result<f64, LabError> {
    let nodes = lab.node_namespaces();
    say(&format!(
        "lab: 3 nodes (n1 priority 200, n2 100, n3 50) and a client on one bridge, namespaces {}-*",
        lab.prefix()
    ));
    say(&format!(
        "config: heartbeat every {} ms, deadAfter {} ms, VIP {VIP}/24, HMAC-authenticated",
        opts.timing.interval_ms, opts.timing.dead_after_ms
    ));
    let service = ServiceGroup {
        exe: opts.exe.clone(),
        dir: dir.to_path_buf(),
        port: opts.echo_port,
        http_port: opts.echo_port + 1,
        max: Duration::from_secs(120),
    };
    imp.write_service_config(dir, lab, &service)?;
    say(
        "group: a service (the lab echo, run by the owner's agent) -> the VIP on it -> an HTTP health check of the service through the VIP",
    );
    let started = Instant::now();
    for i in 1..=3 {
        imp.start(lab, i, dir, &opts.exe)?;
    }
    wait_for_holders(&nodes, &nodes[..1], Duration::from_secs(30))?;
    say(&format!(
        "agents started; n1 holds the VIP after {:.0} ms (highest priority, quorum of 3)",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    // Let the cluster settle: the other agents see n1 holding it.
    std::thread::sleep(Duration::from_millis(500));

    let dead_after = Duration::from_millis(opts.timing.dead_after_ms);
    let probe_for = Duration::from_millis(1000) + dead_after * 3;
    let client = lab.client_ns();
    let probe = lab.spawn_piped(
        &client,
        &opts.exe,
        &probe_args(opts.echo_port, opts.probe_interval, probe_for),
    )?;
    say(&format!(
        "client: probing {VIP} every {} ms over UDP (and ARP, to catch two answering nodes)",
        opts.probe_interval.as_millis()
    ));
    std::thread::sleep(Duration::from_millis(700));
    let owner = lab.node_ns(1);
    let killed_at = unix_now();
    fault::crash_all(&fault::netns_pids(&owner)?)?;
    say("t=0: n1 killed (SIGKILL of everything in its namespace, as if the node crashed)");

    // The kernel fence: n1's VIP was added with a finite lifetime and nobody renews it.
    let fence_deadline = Instant::now() + Duration::from_secs(5);
    let mut vip_gone_ms = None;
    while Instant::now() < fence_deadline {
        if !topology::holds_address(&owner, &VIP.to_string())? {
            vip_gone_ms = Some((unix_now() - killed_at) * 1000.0);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = wait_output(probe, probe_for + Duration::from_secs(15))?;
    let summary = parse_summary(&stdout)?;

    let log_of = |i: usize| dir.join(format!("{}-n{i}.log", imp.name()));
    let new_owner = summary.after.clone().unwrap_or_else(|| "nobody".into());
    let successor_log = match new_owner.as_str() {
        "n3" => log_of(3),
        _ => log_of(2),
    };
    let log = std::fs::read_to_string(&successor_log).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "\nfailover timeline on {new_owner} (from its log):");
    for step in timeline(&log, killed_at) {
        let _ = writeln!(out, "  +{:>7.1} ms  {}", step.at_ms, step.what);
    }
    match vip_gone_ms {
        Some(ms) => {
            let _ = writeln!(
                out,
                "  +{ms:>7.1} ms  n1's kernel dropped the dead agent's VIP by itself (address lifetime)"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  n1 still held the VIP 5 s after the kill (unexpected)"
            );
        }
    }
    let _ = writeln!(
        out,
        "\nclient saw: outage {:.0} ms (answers from {} before, {} after)",
        summary.outage_ms,
        summary.before.as_deref().unwrap_or("nobody"),
        new_owner,
    );
    let _ = writeln!(
        out,
        "  two nodes serving UDP in turn: {} probe intervals; two MACs answering ARP: {} intervals{}",
        summary.split_brain_udp,
        summary.split_brain_arp,
        if summary.split_brain_arp > 0 {
            " (two MACs answered for the VIP: the one-answerer rule was broken)"
        } else {
            ""
        }
    );
    print!("{out}");
    if !summary.recovered {
        return Err(LabError::Invalid {
            what: "demo result".into(),
            detail: "the VIP did not come back within the probe window".into(),
        });
    }
    Ok(summary.outage_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_reads_the_successor_log() {
        let log = r#"{"timestamp":"2026-11-22T00:00:01.000000Z","level":"INFO","fields":{"message":"peer up"}}
{"timestamp":"2026-11-22T00:00:02.950000Z","level":"WARN","fields":{"message":"peer down: no heartbeat within deadAfter","peer":"n1"}}
not json
{"timestamp":"2026-11-22T00:00:02.951000Z","level":"INFO","fields":{"message":"claiming the group","group":"vip"}}
{"timestamp":"2026-11-22T00:00:02.953000Z","level":"INFO","fields":{"message":"a majority voted for this node"}}
{"timestamp":"2026-11-22T00:00:02.954000Z","level":"INFO","fields":{"message":"resource online","resource":"service"}}
{"timestamp":"2026-11-22T00:00:02.955000Z","level":"INFO","fields":{"message":"resource online","resource":"vip"}}
{"timestamp":"2026-11-22T00:00:02.957000Z","level":"INFO","fields":{"message":"resource online","resource":"check"}}
{"timestamp":"2026-11-22T00:00:02.958000Z","level":"INFO","fields":{"message":"takeover timeline","group":"vip","from":"detection","decided_ms":1.0,"ledger_ms":3.0,"vip_up_ms":5.0,"arp_sent_ms":6.0,"online_ms":8.0}}
{"timestamp":"2026-11-22T00:00:03.000000Z","level":"INFO","fields":{"message":"claiming the group"}}
{"timestamp":"2026-11-22T00:00:03.001000Z","level":"INFO","fields":{"message":"takeover timeline","from":"decision","vip_up_ms":0.5}}"#;
        let killed: jiff::Timestamp = "2026-11-22T00:00:02Z".parse().unwrap();
        let steps = timeline(log, killed.as_millisecond() as f64 / 1000.0);
        let ms: Vec<i64> = steps.iter().map(|s| s.at_ms.round() as i64).collect();
        assert_eq!(ms, vec![950, 951, 953, 954, 955, 956, 957, 958]);
        assert!(steps[0].what.starts_with("detected"));
        assert!(steps[3].what.starts_with("service"));
        assert!(steps[4].what.starts_with("VIP"));
        assert!(steps[5].what.contains("ARP"));
        assert!(steps[6].what.starts_with("health check"));
        assert!(steps[7].what.starts_with("group online"));
    }
}
