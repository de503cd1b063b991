//! Hostile input: a namespace on the bridge that is not a member (the client's)
//! floods every member's heartbeat port with datagrams of five hostile kinds while
//! the owner is killed, and the failover is measured as in `bench`'s kill-owner; the
//! members' /metrics must count every hostile datagram under its drop reason.
//!
//! Owns: the hostile datagrams (pure, tested against the codec), the flooder loop
//! (bounded by its duration), the /metrics scrape and the run. Must never: send to
//! anything but the lab's member addresses, or run past its duration.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use super::LabError;
use super::bench::{
    echo_args, last_json_line, parse_summary, probe_args, tear_down, wait_for_holders, wait_output,
};
use super::fault;
use super::impls::{FailoverTiming, Impl, key_path};
use super::topology::{Lab, node_v4};
use crate::membership::wire::MAX_DATAGRAM;
use crate::membership::{Heartbeat, Keyring};

/// Cluster id of the lab's FailoverCluster (`default/lab`: the YAML has no namespace).
pub const LAB_CLUSTER: &str = "default/lab";
/// The agents' metrics port (their default `--metrics-addr`).
pub const METRICS_PORT: u16 = 9477;
/// Longest flood accepted.
pub const MAX_FLOOD: Duration = Duration::from_secs(300);

/// The hostile kinds, each with the drop reason (metrics label) it must be counted under.
pub const KINDS: [(&str, &str); 5] = [
    ("wrong_key", "bad_mac"),
    ("replayed", "replayed"),
    ("truncated", "malformed"),
    ("oversized", "oversized"),
    ("foreign_cluster", "foreign_cluster"),
];

fn heartbeat(cluster: &str, sender: &str, incarnation: u64, seq: u64) -> Heartbeat {
    Heartbeat {
        cluster: cluster.to_string(),
        sender: sender.to_string(),
        incarnation,
        seq,
        config_hash: 0,
        leaving: false,
        peers: Vec::new(),
        claims: Vec::new(),
        grants: Vec::new(),
        unable: Vec::new(),
        failovers: Vec::new(),
    }
}

/// The hostile datagram of kind `kind` number `k` for a member of `cluster` (pure):
/// - `wrong_key`: a well-formed heartbeat of the cluster signed with another key;
/// - `replayed`: a heartbeat of member `sender` signed with the cluster's key, from
///   incarnation 1 (older than any running agent's: what a recording of an earlier
///   run replays);
/// - `truncated`: the first 20 bytes of a heartbeat (cut inside the header);
/// - `oversized`: more than the largest datagram the codec reads;
/// - `foreign_cluster`: a heartbeat of another cluster with its own key.
pub fn datagram(
    kind: &str,
    k: u64,
    cluster: &str,
    sender: &str,
    key: &Keyring,
    other_key: &Keyring,
) -> Option<Vec<u8>> {
    let encode = |hb: Heartbeat, keys: &Keyring| hb.encode(keys).ok();
    match kind {
        "wrong_key" => encode(heartbeat(cluster, sender, u64::MAX / 2, k + 1), other_key),
        "replayed" => encode(heartbeat(cluster, sender, 1, k + 1), key),
        "truncated" => encode(heartbeat(cluster, sender, 1, k + 1), key).map(|mut d| {
            d.truncate(20);
            d
        }),
        "oversized" => Some(vec![0xA5; MAX_DATAGRAM + 1000]),
        "foreign_cluster" => encode(
            heartbeat("default/another-cluster", sender, 1, k + 1),
            other_key,
        ),
        _ => None,
    }
}

/// Drop counters by reason from a Prometheus text exposition (pure).
pub fn parse_drops(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("failover_heartbeats_dropped_total{reason=\"") else {
            continue;
        };
        let Some((reason, value)) = rest.split_once("\"}") else {
            continue;
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            out.insert(reason.to_string(), v as u64);
        }
    }
    out
}

/// GET /metrics from `addr` (bounded by timeouts) and parse the drop counters.
pub fn scrape_drops(addr: SocketAddr) -> Result<BTreeMap<String, u64>, LabError> {
    let what = format!("/metrics of {addr}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| LabError::io(what.clone(), e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(3))))
        .and_then(|()| stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: lab\r\n\r\n"))
        .map_err(|e| LabError::io(what.clone(), e))?;
    let mut body = String::new();
    stream
        .take(4 << 20)
        .read_to_string(&mut body)
        .map_err(|e| LabError::io(what, e))?;
    Ok(parse_drops(&body))
}

/// What the flooder sent to one member and what that member counted meanwhile.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetCounts {
    pub target: String,
    /// Datagrams sent, by the drop reason they must be counted under.
    pub sent: BTreeMap<String, u64>,
    /// Growth of the member's drop counters over the flood, by reason (absent when
    /// the member was not scraped: it was the one killed).
    pub counted: Option<BTreeMap<String, u64>>,
}

/// Floods `targets` (member addresses and `sender` = the member each replay claims
/// to come from, never the target itself) for `length` at `rate` datagrams per second
/// per target, the kinds in turn; scrapes `scraped` members before and after.
pub fn flood(
    targets: &[(Ipv4Addr, String)],
    port: u16,
    key: &Keyring,
    rate: u32,
    length: Duration,
    scraped: &[Ipv4Addr],
) -> Result<Vec<TargetCounts>, LabError> {
    let length = length.min(MAX_FLOOD);
    let other_key =
        Keyring::new(b"not the key of this cluster, at all".to_vec(), None).map_err(|e| {
            LabError::Invalid {
                what: "flood key".into(),
                detail: e.to_string(),
            }
        })?;
    let metrics = |ip: Ipv4Addr| SocketAddr::from((ip, METRICS_PORT));
    let mut before = BTreeMap::new();
    for &ip in scraped {
        before.insert(ip, scrape_drops(metrics(ip))?);
    }
    let sock = UdpSocket::bind(("0.0.0.0", 0)).map_err(|e| LabError::io("flood socket", e))?;
    let mut counts: Vec<TargetCounts> = targets
        .iter()
        .map(|(ip, _)| TargetCounts {
            target: ip.to_string(),
            ..TargetCounts::default()
        })
        .collect();
    let period = Duration::from_secs(1) / rate.max(1);
    let start = Instant::now();
    let mut k = 0u64;
    // Bounded by `length`; one round sends one datagram to every target.
    while start.elapsed() < length {
        let (kind, reason) = KINDS[(k % KINDS.len() as u64) as usize];
        for ((ip, sender), c) in targets.iter().zip(&mut counts) {
            let Some(bytes) = datagram(kind, k, LAB_CLUSTER, sender, key, &other_key) else {
                continue;
            };
            if sock.send_to(&bytes, (*ip, port)).is_ok() {
                *c.sent.entry(reason.to_string()).or_default() += 1;
            }
        }
        k += 1;
        let next = period * u32::try_from(k).unwrap_or(u32::MAX);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
    // Let the members read what is queued before counting.
    std::thread::sleep(Duration::from_secs(1));
    for c in &mut counts {
        let Ok(ip) = c.target.parse::<Ipv4Addr>() else {
            continue;
        };
        if let Some(b) = before.get(&ip) {
            let after = scrape_drops(metrics(ip))?;
            c.counted = Some(
                after
                    .iter()
                    .map(|(r, v)| (r.clone(), v.saturating_sub(b.get(r).copied().unwrap_or(0))))
                    .filter(|(_, v)| *v > 0)
                    .collect(),
            );
        }
    }
    Ok(counts)
}

/// The hostile run's JSON line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostileReport {
    pub scenario: &'static str,
    pub interval_ms: u64,
    pub dead_after_ms: u64,
    pub rate_per_target: u32,
    /// Kill-owner without and with the flood: the client's longest outage.
    pub outage_ms_quiet: f64,
    pub outage_ms_flooded: f64,
    pub recovered_quiet: bool,
    pub recovered_flooded: bool,
    /// Probe intervals with two answerers, by UDP (two nodes serving in turn) and by
    /// ARP (two MACs) — without and with the flood. After SIGKILL the dead owner's
    /// kernel answers ARP until the VIP's lifetime ends (issue 10, part 2), so ARP
    /// split brain is expected in both runs until the agent answers ARP itself.
    pub split_brain_udp_quiet: u64,
    pub split_brain_udp_flooded: u64,
    pub split_brain_arp_quiet: u64,
    pub split_brain_arp_flooded: u64,
    pub targets: Vec<TargetCounts>,
}

/// Kill-owner on a fresh 3-node lab; with `flood` the client floods all members from
/// just before the kill until the probe ends. Returns the probe summary and the counts.
fn kill_owner(
    exe: &Path,
    imp: &Impl,
    work_dir: &Path,
    flood_rate: Option<u32>,
) -> Result<(super::probe::Summary, Vec<TargetCounts>), LabError> {
    let mut lab = Lab::up(3)?;
    let dir = work_dir.join(lab.prefix());
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
    let result = (|| {
        let port = 7000;
        let window = imp.window();
        for i in 1..=3 {
            let ns = lab.node_ns(i);
            lab.spawn(
                &ns,
                exe,
                &echo_args(
                    port,
                    &format!("n{i}"),
                    Duration::from_secs(120) + window * 4,
                ),
                None,
            )?;
        }
        imp.write_config(&dir, &lab, &[])?;
        for i in 1..=3 {
            imp.start(&mut lab, i, &dir, exe)?;
        }
        let nodes = lab.node_namespaces();
        wait_for_holders(&nodes, &nodes[..1], Duration::from_secs(30) + window)?;
        std::thread::sleep(Duration::from_millis(500));
        let warmup = Duration::from_millis(500);
        let probe_length = warmup + window;
        let client = lab.client_ns();
        let probe = lab.spawn_piped(
            &client,
            exe,
            &probe_args(port, Duration::from_millis(2), probe_length),
        )?;
        let flooder = match flood_rate {
            Some(rate) => {
                let args = vec![
                    "lab".to_string(),
                    "flood".into(),
                    "--key-file".into(),
                    key_path(&dir).display().to_string(),
                    "--rate".into(),
                    rate.to_string(),
                    "--duration-ms".into(),
                    probe_length.as_millis().to_string(),
                ];
                Some(lab.spawn_piped(&client, exe, &args)?)
            }
            None => None,
        };
        std::thread::sleep(warmup);
        let owner = lab.node_ns(1);
        fault::crash_all(&fault::netns_pids(&owner)?)?;
        let summary = parse_summary(&wait_output(probe, probe_length + Duration::from_secs(15))?)?;
        let counts = match flooder {
            Some(child) => {
                last_json_line(&wait_output(child, probe_length + Duration::from_secs(20))?)?
            }
            None => Vec::new(),
        };
        Ok((summary, counts))
    })();
    tear_down(&mut lab, &dir)?;
    result
}

/// Kill-owner without and with a flood of `rate` datagrams per second per member.
pub fn run(
    exe: &Path,
    timing: FailoverTiming,
    rate: u32,
    work_dir: &Path,
) -> Result<HostileReport, LabError> {
    let imp = Impl::parse("failover", timing.clone(), vec![])?;
    imp.check_available(exe)?;
    let (quiet, _) = kill_owner(exe, &imp, work_dir, None)?;
    let (flooded, targets) = kill_owner(exe, &imp, work_dir, Some(rate))?;
    Ok(HostileReport {
        scenario: "hostile-flood",
        interval_ms: timing.interval_ms,
        dead_after_ms: timing.dead_after_ms,
        rate_per_target: rate,
        outage_ms_quiet: quiet.outage_ms,
        outage_ms_flooded: flooded.outage_ms,
        recovered_quiet: quiet.recovered,
        recovered_flooded: flooded.recovered,
        split_brain_udp_quiet: quiet.split_brain_udp,
        split_brain_udp_flooded: flooded.split_brain_udp,
        split_brain_arp_quiet: quiet.split_brain_arp,
        split_brain_arp_flooded: flooded.split_brain_arp,
        targets,
    })
}

/// The flooder's side when run inside the client namespace: all three lab members,
/// each replay claiming to come from another member, the survivors (n2, n3) scraped.
pub fn flood_lab_members(
    key_file: &Path,
    rate: u32,
    length: Duration,
    heartbeat_port: u16,
) -> Result<Vec<TargetCounts>, LabError> {
    let key = crate::keyfile::read_key_file(key_file)
        .ok()
        .and_then(|k| Keyring::new(k, None).ok())
        .ok_or_else(|| LabError::Invalid {
            what: "key file".into(),
            detail: key_file.display().to_string(),
        })?;
    let targets: Vec<(Ipv4Addr, String)> = (1..=3)
        .map(|i| (node_v4(i), format!("n{}", i % 3 + 1)))
        .collect();
    flood(
        &targets,
        heartbeat_port,
        &key,
        rate,
        length,
        &[node_v4(2), node_v4(3)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{DropReason, Heartbeat};

    fn keys() -> (Keyring, Keyring) {
        (
            Keyring::new(vec![7; 32], None).unwrap(),
            Keyring::new(vec![9; 32], None).unwrap(),
        )
    }

    #[test]
    fn each_kind_is_dropped_by_the_codec_for_its_reason() {
        let (key, other) = keys();
        for (kind, reason) in KINDS {
            let bytes = datagram(kind, 3, LAB_CLUSTER, "n2", &key, &other).unwrap();
            match Heartbeat::decode(&bytes, LAB_CLUSTER, &key) {
                Err(r) => assert_eq!(r.label(), reason, "{kind}"),
                // A replay decodes: the membership layer drops it as stale.
                Ok(hb) => {
                    assert_eq!(kind, "replayed");
                    assert_eq!((hb.incarnation, reason), (1, DropReason::Replayed.label()));
                }
            }
        }
        assert!(datagram("nonsense", 0, LAB_CLUSTER, "n2", &key, &other).is_none());
    }

    #[test]
    fn parses_drop_counters() {
        let text = "# HELP failover_heartbeats_dropped Datagrams dropped, by reason\n\
            failover_heartbeats_dropped_total{reason=\"bad_mac\"} 12\n\
            failover_heartbeats_dropped_total{reason=\"replayed\"} 3\n\
            failover_heartbeats_sent_total 99\n";
        let d = parse_drops(text);
        assert_eq!(d.get("bad_mac"), Some(&12));
        assert_eq!(d.get("replayed"), Some(&3));
        assert_eq!(d.len(), 2);
    }
}
