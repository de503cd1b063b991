//! The client-side probe: every interval it sends a numbered UDP datagram to the VIP
//! (the echo responder answers with its node name) and broadcasts an ARP who-has for
//! the VIP, then reports the longest outage and every interval in which two nodes
//! answered (split brain on the wire).
//!
//! Owns: the probe loop (`run`) and the pure analysis of what it recorded
//! (`analyze`, tested). The ARP frames and the packet socket are the agent's own
//! (`agent::vip::packet`, `agent::vip::socket`): the lab uses the shipped code, it
//! carries no copy of it. Must never: loop beyond its duration (every loop is bounded
//! by time and count), or change the client's own neighbour cache (the who-has is an
//! RFC 5227 probe from a MAC that is not the client's, see `record`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::LabError;
use crate::agent::vip::packet::{self, Mac};
use crate::agent::vip::socket::Capture;

/// Longest probe the tool accepts (bounds memory and every loop).
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// How long to keep listening for late answers after the last request.
const GRACE: Duration = Duration::from_millis(200);
/// How long a receiving thread waits for an answer before it looks at the stop flag.
const RECEIVE_WAIT: Duration = Duration::from_millis(50);

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub interval: Duration,
    pub duration: Duration,
    /// Interface on which ARP is sent (the client's bridge-facing one).
    pub iface: String,
    /// Also probe ARP (needs CAP_NET_RAW and promiscuous mode on `iface`).
    pub arp: bool,
    /// Optional file receiving one JSON line per probe interval.
    pub samples: Option<PathBuf>,
}

/// A UDP answer: which request, which node, when (µs since the probe started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpAnswer {
    pub seq: u64,
    pub node: String,
    pub at_us: u64,
}

/// An ARP answer for the VIP: who (MAC) and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpAnswer {
    pub mac: Mac,
    pub at_us: u64,
}

/// Everything one probe run recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub interval_us: u64,
    /// Requests sent; request `k` left at `k * interval_us` (scheduled time).
    pub sent: u64,
    pub udp: Vec<UdpAnswer>,
    pub arp: Vec<ArpAnswer>,
}

/// The probe's verdict, printed as its last stdout line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub sent: u64,
    pub answered: u64,
    /// Longest time without an answered request: between the send times of two
    /// consecutive answered requests, or from the last answered one to the end when
    /// the probe was never answered again (then `recovered` is false).
    pub outage_ms: f64,
    /// When that outage began (ms since the probe started).
    pub outage_start_ms: f64,
    pub recovered: bool,
    /// Node that answered just before and just after the longest outage.
    pub before: Option<String>,
    pub after: Option<String>,
    /// Send time of the first answered request (ms); a leading gap is not an outage.
    pub first_answer_ms: Option<f64>,
    /// Intervals in which two different MACs answered ARP for the VIP; requests
    /// answered by another node than both neighbouring requests (two nodes answering
    /// in turn); and the union of both sets of intervals.
    pub split_brain_arp: u64,
    pub split_brain_udp: u64,
    pub split_brain: u64,
    /// Every node that answered UDP and every MAC that answered ARP, sorted.
    pub nodes: Vec<String>,
    pub macs: Vec<String>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The probe intervals with split brain on the wire, as (ARP, UDP) sets of interval
/// numbers (pure).
pub fn split_brain_intervals(rec: &Record) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let iv = rec.interval_us.max(1);
    let mut answered: BTreeMap<u64, &str> = BTreeMap::new();
    for a in rec.udp.iter().filter(|a| a.seq < rec.sent) {
        answered.entry(a.seq).or_insert(&a.node);
    }
    // Split brain on UDP: each request reaches one MAC, so two nodes can only show up
    // as answering in turn — request k answered by another node than k-1 and k+1,
    // which agree (A B A). A clean handover (A A B B) never matches; bucketing answers
    // by arrival time would flag it whenever a late answer crosses an interval edge.
    let by_seq: Vec<(u64, &str)> = answered.iter().map(|(k, v)| (*k, *v)).collect();
    let udp_sb: BTreeSet<u64> = by_seq
        .windows(3)
        .filter(|w| w[0].1 == w[2].1 && w[1].1 != w[0].1)
        .map(|w| w[1].0)
        .collect();
    // Split brain on ARP: two MACs answering within one interval (by arrival time).
    let mut arp_by_iv: BTreeMap<u64, BTreeSet<Mac>> = BTreeMap::new();
    for a in &rec.arp {
        arp_by_iv.entry(a.at_us / iv).or_default().insert(a.mac);
    }
    let arp_sb: BTreeSet<u64> = arp_by_iv
        .iter()
        .filter(|(_, s)| s.len() >= 2)
        .map(|(k, _)| *k)
        .collect();
    (arp_sb, udp_sb)
}

/// One probe interval as the samples file has it (one JSON line each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub seq: u64,
    /// Scheduled send time, ms since the probe started.
    pub sent_ms: f64,
    /// The node whose echo answered this request first, if any.
    pub node: Option<String>,
    pub rtt_ms: Option<f64>,
    /// MACs that answered ARP for the VIP during this interval.
    pub arp_macs: Vec<String>,
}

/// The recording a samples file describes (its inverse: first answers only, ARP
/// answers at the start of their interval), so a run read back from its samples is
/// analysed by the same code (pure).
pub fn record_from_samples(samples: &[Sample], interval_us: u64) -> Record {
    let iv = interval_us.max(1);
    let mut rec = Record {
        interval_us: iv,
        sent: samples.iter().map(|s| s.seq + 1).max().unwrap_or(0),
        ..Record::default()
    };
    for s in samples {
        if let Some(node) = &s.node {
            rec.udp.push(UdpAnswer {
                seq: s.seq,
                node: node.clone(),
                at_us: s.seq * iv + (s.rtt_ms.unwrap_or(0.0).max(0.0) * 1000.0) as u64,
            });
        }
        for mac in s.arp_macs.iter().filter_map(|m| parse_mac(m)) {
            rec.arp.push(ArpAnswer {
                mac,
                at_us: s.seq * iv,
            });
        }
    }
    rec
}

/// Pure analysis of a recording.
pub fn analyze(rec: &Record) -> Summary {
    let iv = rec.interval_us.max(1);
    // First answer per request: the node that answered it.
    let mut answered: BTreeMap<u64, &str> = BTreeMap::new();
    for a in rec.udp.iter().filter(|a| a.seq < rec.sent) {
        answered.entry(a.seq).or_insert(&a.node);
    }
    let end_us = rec.sent.saturating_sub(1) * iv;
    let mut outage_us = 0;
    let mut outage_start_us = 0;
    let mut before = None;
    let mut after = None;
    let mut recovered = true;
    let mut prev: Option<(u64, &str)> = None;
    for (&seq, &node) in &answered {
        if let Some((pseq, pnode)) = prev {
            let gap = (seq - pseq) * iv;
            if gap > outage_us {
                outage_us = gap;
                outage_start_us = pseq * iv;
                before = Some(pnode.to_string());
                after = Some(node.to_string());
            }
        }
        prev = Some((seq, node));
    }
    match prev {
        Some((last, node)) => {
            let tail = end_us - last * iv;
            if tail > outage_us && tail > iv {
                outage_us = tail;
                outage_start_us = last * iv;
                before = Some(node.to_string());
                after = None;
                recovered = false;
            }
        }
        None => {
            outage_us = end_us;
            recovered = false;
        }
    }
    let (arp_sb, udp_sb) = split_brain_intervals(rec);
    let nodes: BTreeSet<String> = rec.udp.iter().map(|a| a.node.clone()).collect();
    let macs: BTreeSet<String> = rec.arp.iter().map(|a| mac_to_string(&a.mac)).collect();
    Summary {
        sent: rec.sent,
        answered: answered.len() as u64,
        outage_ms: ms(outage_us),
        outage_start_ms: ms(outage_start_us),
        recovered,
        before,
        after,
        first_answer_ms: answered.keys().next().map(|s| ms(s * iv)),
        split_brain_arp: arp_sb.len() as u64,
        split_brain_udp: udp_sb.len() as u64,
        split_brain: arp_sb.union(&udp_sb).count() as u64,
        nodes: nodes.into_iter().collect(),
        macs: macs.into_iter().collect(),
    }
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff` (the samples file and the summary).
pub fn mac_to_string(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Parses an echo answer `"<seq> <node>"`.
pub fn parse_answer(payload: &[u8]) -> Option<(u64, String)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (seq, node) = text.trim().split_once(' ')?;
    let node = node.trim();
    if node.is_empty() {
        return None;
    }
    Some((seq.parse().ok()?, node.to_string()))
}

fn read_sys(iface: &str, file: &str) -> Result<String, LabError> {
    let path = format!("/sys/class/net/{iface}/{file}");
    std::fs::read_to_string(&path).map_err(|e| LabError::io(path, e))
}

fn elapsed_us(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Runs the probe (in the client namespace) and returns the record.
pub fn record(cfg: &ProbeConfig) -> Result<Record, LabError> {
    if cfg.interval.is_zero() || cfg.duration.is_zero() || cfg.duration > MAX_DURATION {
        return Err(LabError::Invalid {
            what: "probe timing".into(),
            detail: format!(
                "interval {:?}, duration {:?} (both > 0, duration ≤ {:?})",
                cfg.interval, cfg.duration, MAX_DURATION
            ),
        });
    }
    let count = (cfg.duration.as_micros() / cfg.interval.as_micros()).max(1) as u64;
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));

    let udp = UdpSocket::bind("0.0.0.0:0").map_err(|e| LabError::io("probe UDP socket", e))?;
    udp.set_read_timeout(Some(RECEIVE_WAIT))
        .map_err(|e| LabError::io("probe UDP socket", e))?;
    let udp_rx = udp
        .try_clone()
        .map_err(|e| LabError::io("probe UDP socket", e))?;
    let udp_answers = Arc::new(Mutex::new(Vec::<UdpAnswer>::new()));
    let udp_thread = {
        let (stop, answers) = (stop.clone(), udp_answers.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            // Bounded: the stop flag is set after the send loop; the read times out.
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, _)) = udp_rx.recv_from(&mut buf) {
                    let at_us = elapsed_us(t0);
                    if let Some((seq, node)) = parse_answer(&buf[..n])
                        && let Ok(mut v) = answers.lock()
                    {
                        v.push(UdpAnswer { seq, node, at_us });
                    }
                }
            }
        })
    };

    // A locally administered MAC that is not the client's: answers go to it, so only
    // this socket (in promiscuous mode) sees them, never the client's ARP stack.
    let pid = std::process::id().to_be_bytes();
    let fake_mac: Mac = [0x02, 0x77, pid[0], pid[1], pid[2], pid[3]];
    let arp_answers = Arc::new(Mutex::new(Vec::<ArpAnswer>::new()));
    let arp_socket = if cfg.arp {
        let promisc = read_sys(&cfg.iface, "flags")
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .is_some_and(|f| f & 0x100 != 0);
        if !promisc {
            tracing::warn!(iface = %cfg.iface, "not promiscuous: ARP answers to the probe will be missed");
        }
        let ifindex: u32 = read_sys(&cfg.iface, "ifindex")?
            .trim()
            .parse()
            .map_err(|_| LabError::Invalid {
                what: "ifindex".into(),
                detail: cfg.iface.clone(),
            })?;
        // The agent's packet socket lives on a tokio reactor: a current-thread runtime
        // of its own, driven by the receiving thread; the sending loop below only
        // calls the socket's non-blocking send.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LabError::io("ARP receive runtime", e))?;
        let socket = {
            let _reactor = runtime.enter();
            Capture::bind(ifindex, packet::ETHERTYPE_ARP)
        }
        .map_err(|e| LabError::io("ARP socket", e))?;
        Some((runtime, Arc::new(socket)))
    } else {
        None
    };
    let arp_sender = arp_socket.as_ref().map(|(_, socket)| socket.clone());
    let arp_thread = arp_socket.map(|(runtime, socket)| {
        let (stop, answers, vip) = (stop.clone(), arp_answers.clone(), cfg.vip);
        std::thread::spawn(move || {
            // Bounded: the stop flag is set after the send loop; each wait times out.
            runtime.block_on(async {
                while !stop.load(Ordering::Relaxed) {
                    let frame = match tokio::time::timeout(RECEIVE_WAIT, socket.next_frame()).await
                    {
                        Ok(Ok(frame)) => frame,
                        // A receive error that persists must not spin the thread.
                        Ok(Err(_)) => {
                            tokio::time::sleep(RECEIVE_WAIT).await;
                            continue;
                        }
                        Err(_elapsed) => continue,
                    };
                    let at_us = elapsed_us(t0);
                    if let Some(r) = packet::parse_arp_reply(&frame)
                        && r.sender_ip == vip
                        && r.target_mac == fake_mac
                        && let Ok(mut v) = answers.lock()
                    {
                        v.push(ArpAnswer {
                            mac: r.sender_mac,
                            at_us,
                        });
                    }
                }
            });
        })
    });

    let target = SocketAddr::from((cfg.vip, cfg.port));
    // Sender address 0.0.0.0 (an RFC 5227 probe): a node answering it learns nothing
    // (no neighbour entry for the fake MAC), so the probe cannot disturb the traffic
    // it measures.
    let frame = packet::arp_request(fake_mac, Ipv4Addr::UNSPECIFIED, cfg.vip);
    let mut send_errors = 0u64;
    for seq in 0..count {
        let due = t0 + cfg.interval * u32::try_from(seq).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Failures (no route while the neighbour is unresolved, …) are part of what
        // is measured: the request simply goes unanswered.
        if udp.send_to(seq.to_string().as_bytes(), target).is_err() {
            send_errors += 1;
        }
        if let Some(socket) = &arp_sender
            && socket.send(&frame).is_err()
        {
            send_errors += 1;
        }
    }
    std::thread::sleep(GRACE);
    stop.store(true, Ordering::Relaxed);
    let _ = udp_thread.join();
    if let Some(t) = arp_thread {
        let _ = t.join();
    }
    if send_errors > 0 {
        tracing::debug!(send_errors, "probe sends failed");
    }
    let rec = Record {
        interval_us: u64::try_from(cfg.interval.as_micros()).unwrap_or(u64::MAX),
        sent: count,
        udp: take_all(&udp_answers),
        arp: take_all(&arp_answers),
    };
    if let Some(path) = &cfg.samples {
        write_samples(path, &rec)?;
    }
    Ok(rec)
}

/// Moves the recorded answers out (a poisoned lock means a reader thread panicked;
/// what it recorded so far is still valid data).
fn take_all<T>(m: &Mutex<Vec<T>>) -> Vec<T> {
    match m.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    }
}

/// One JSON line per interval: send time, first UDP answerer, ARP MACs seen.
fn write_samples(path: &PathBuf, rec: &Record) -> Result<(), LabError> {
    let iv = rec.interval_us.max(1);
    let mut udp: BTreeMap<u64, &UdpAnswer> = BTreeMap::new();
    for a in &rec.udp {
        udp.entry(a.seq).or_insert(a);
    }
    let mut arp_iv: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for a in &rec.arp {
        arp_iv
            .entry(a.at_us / iv)
            .or_default()
            .insert(mac_to_string(&a.mac));
    }
    let file =
        std::fs::File::create(path).map_err(|e| LabError::io(path.display().to_string(), e))?;
    let mut w = std::io::BufWriter::new(file);
    for seq in 0..rec.sent {
        let a = udp.get(&seq);
        let sample = Sample {
            seq,
            sent_ms: ms(seq * iv),
            node: a.map(|a| a.node.clone()),
            rtt_ms: a.map(|a| ms(a.at_us.saturating_sub(seq * iv))),
            arp_macs: arp_iv
                .get(&seq)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        };
        let line = serde_json::to_string(&sample).map_err(|source| LabError::ProbeOutput {
            line: String::new(),
            source,
        })?;
        writeln!(w, "{line}").map_err(|e| LabError::io(path.display().to_string(), e))?;
    }
    w.flush()
        .map_err(|e| LabError::io(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(seq: u64, node: &str, at_us: u64) -> UdpAnswer {
        UdpAnswer {
            seq,
            node: node.into(),
            at_us,
        }
    }

    /// 100 requests every 2 ms; n1 answers 0..=40, n2 answers 60..100.
    fn failover_record() -> Record {
        let mut r = Record {
            interval_us: 2000,
            sent: 100,
            ..Default::default()
        };
        for s in 0..=40 {
            r.udp.push(udp(s, "n1", s * 2000 + 100));
        }
        for s in 60..100 {
            r.udp.push(udp(s, "n2", s * 2000 + 100));
        }
        r
    }

    #[test]
    fn mac_round_trip() {
        let node: Mac = [0x52, 0x54, 0, 0xaa, 0xbb, 0xcc];
        assert_eq!(mac_to_string(&node), "52:54:00:aa:bb:cc");
        assert_eq!(parse_mac("52:54:00:aa:bb:cc\n"), Some(node));
        assert_eq!(parse_mac("52:54:00:aa:bb"), None);
        assert_eq!(parse_mac("52:54:00:aa:bb:cc:dd"), None);
        assert_eq!(parse_mac("zz:54:00:aa:bb:cc"), None);
    }

    #[test]
    fn longest_gap_with_before_and_after() {
        let s = analyze(&failover_record());
        assert_eq!(s.answered, 81);
        assert_eq!(s.outage_ms, 40.0); // seq 40 → 60 at 2 ms
        assert_eq!(s.outage_start_ms, 80.0);
        assert_eq!(s.before.as_deref(), Some("n1"));
        assert_eq!(s.after.as_deref(), Some("n2"));
        assert!(s.recovered);
        assert_eq!(s.split_brain, 0);
        assert_eq!(s.nodes, vec!["n1", "n2"]);
    }

    #[test]
    fn unrecovered_tail_counts_to_the_end() {
        let mut r = failover_record();
        r.udp.retain(|a| a.node == "n1");
        let s = analyze(&r);
        assert!(!s.recovered);
        assert_eq!(s.outage_ms, (99 - 40) as f64 * 2.0);
        assert_eq!(s.after, None);
    }

    #[test]
    fn nothing_answered() {
        let r = Record {
            interval_us: 2000,
            sent: 10,
            ..Default::default()
        };
        let s = analyze(&r);
        assert!(!s.recovered);
        assert_eq!(s.outage_ms, 18.0);
        assert_eq!(s.first_answer_ms, None);
    }

    #[test]
    fn leading_gap_is_not_an_outage() {
        let mut r = failover_record();
        r.udp.retain(|a| a.seq >= 10);
        let s = analyze(&r);
        assert_eq!(s.outage_ms, 40.0);
        assert_eq!(s.first_answer_ms, Some(20.0));
    }

    #[test]
    fn samples_read_back_give_the_same_split_brain() {
        let rec = Record {
            interval_us: 1000,
            sent: 5,
            udp: vec![
                udp(0, "n1", 100),
                udp(1, "n2", 1100),
                udp(2, "n1", 2100),
                udp(3, "n1", 3100),
            ],
            arp: vec![
                ArpAnswer {
                    mac: [1; 6],
                    at_us: 3200,
                },
                ArpAnswer {
                    mac: [2; 6],
                    at_us: 3300,
                },
            ],
        };
        let dir = std::env::temp_dir().join(format!("probe-samples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.jsonl");
        write_samples(&path, &rec).unwrap();
        let samples: Vec<Sample> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(samples.len(), 5);
        let back = record_from_samples(&samples, 1000);
        assert_eq!(split_brain_intervals(&back), split_brain_intervals(&rec));
        let (arp_sb, udp_sb) = split_brain_intervals(&back);
        assert_eq!((arp_sb.len(), udp_sb.len()), (1, 1));
    }

    #[test]
    fn split_brain_from_arp_and_udp_is_counted_once_per_interval() {
        let mut r = failover_record();
        let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        // Interval 5: two MACs. Interval 7: one MAC twice (not split brain).
        r.arp.push(ArpAnswer {
            mac: a,
            at_us: 10_100,
        });
        r.arp.push(ArpAnswer {
            mac: b,
            at_us: 10_900,
        });
        r.arp.push(ArpAnswer {
            mac: a,
            at_us: 14_100,
        });
        r.arp.push(ArpAnswer {
            mac: a,
            at_us: 14_200,
        });
        // Requests 5 and 8 answered by n2 between n1's: two nodes answering in turn.
        for seq in [5, 8] {
            r.udp.retain(|u| u.seq != seq);
            r.udp.push(udp(seq, "n2", seq * 2000 + 100));
        }
        let s = analyze(&r);
        assert_eq!(s.split_brain_arp, 1);
        assert_eq!(s.split_brain_udp, 2);
        assert_eq!(s.split_brain, 2, "interval 5 counts once");
        assert_eq!(s.macs.len(), 2);
    }

    #[test]
    fn a_clean_handover_is_not_split_brain_even_with_late_answers() {
        let mut r = failover_record();
        // n1's answer to its last request arrives in the interval of n2's first.
        r.udp.retain(|u| u.seq != 40);
        r.udp.push(udp(40, "n1", 60 * 2000 + 50));
        let s = analyze(&r);
        assert_eq!(s.split_brain_udp, 0);
        assert_eq!(s.split_brain, 0);
    }

    #[test]
    fn answers_for_requests_never_sent_are_ignored() {
        let mut r = failover_record();
        r.udp.push(udp(10_000, "n9", 1));
        let s = analyze(&r);
        assert_eq!(s.answered, 81);
    }

    #[test]
    fn parses_answers_defensively() {
        assert_eq!(parse_answer(b"42 n1"), Some((42, "n1".to_string())));
        assert_eq!(parse_answer(b"42 n1\n"), Some((42, "n1".to_string())));
        assert_eq!(parse_answer(b"42"), None);
        assert_eq!(parse_answer(b"x n1"), None);
        assert_eq!(parse_answer(b"42 "), None);
        assert_eq!(parse_answer(&[0xff, 0x20, 0x41]), None);
    }

    #[test]
    fn rejects_unbounded_configs() {
        let cfg = ProbeConfig {
            vip: Ipv4Addr::new(10, 77, 0, 100),
            port: 1,
            interval: Duration::ZERO,
            duration: Duration::from_secs(1),
            iface: "eth0".into(),
            arp: false,
            samples: None,
        };
        assert!(record(&cfg).is_err());
        let cfg = ProbeConfig {
            interval: Duration::from_millis(2),
            duration: MAX_DURATION + Duration::from_secs(1),
            ..cfg
        };
        assert!(record(&cfg).is_err());
    }
}
