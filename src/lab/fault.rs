//! Fault injection for the lab: signals to processes, link down/up, and nftables
//! rules inside a node namespace (symmetric partition, one-way random loss).
//!
//! Owns: rendering the nftables ruleset (pure, tested) and applying it in a lab
//! namespace under its own table `inet fo_lab`. Must never: touch another table, the
//! root namespace, or a process the caller did not name.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::LabError;
use super::topology::{ip, run};

/// nftables table the lab owns inside a namespace.
pub const NFT_TABLE: &str = "fo_lab";

/// Signals the scenarios use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Kill,
    Stop,
    Cont,
    Term,
    Hup,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Term => "TERM",
            Signal::Hup => "HUP",
        }
    }
}

/// Sends `sig` to all `pids` in one `kill` call (so a daemon and its children die
/// in the same instant and no parent can respawn a child).
pub fn signal_all(pids: &[u32], sig: Signal) -> Result<(), LabError> {
    let mut args = vec!["-s".to_string(), sig.name().to_string()];
    args.extend(pids.iter().map(u32::to_string));
    run("kill", &args).map(|_| ())
}

/// Crashes processes the way a node or runtime failure does: first SIGSTOP to all
/// (so none can react to another's death — keepalived's VRRP child, for one, gets
/// SIGTERM via PR_SET_PDEATHSIG when its parent dies and would shut down cleanly),
/// then SIGKILL to all.
pub fn crash_all(pids: &[u32]) -> Result<(), LabError> {
    signal_all(pids, Signal::Stop)?;
    signal_all(pids, Signal::Kill)
}

/// Sends `sig` to one process.
pub fn signal(pid: u32, sig: Signal) -> Result<(), LabError> {
    signal_all(&[pid], sig)
}

/// Whether process `pid` has exited (gone, or a zombie waiting to be reaped).
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// Waits (bounded) until every process of `pids` has exited.
pub fn wait_exited(pids: &[u32], timeout: Duration) -> Result<(), LabError> {
    let deadline = Instant::now() + timeout;
    while !pids.iter().all(|&p| exited(p)) {
        if Instant::now() >= deadline {
            return Err(LabError::Timeout(format!("killed agents {pids:?} to exit")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Every process living in namespace `ns`.
pub fn netns_pids(ns: &str) -> Result<Vec<u32>, LabError> {
    Ok(super::topology::parse_pids(&ip(&["netns", "pids", ns])?))
}

/// Sets `iface` in `ns` down or up.
pub fn set_link(ns: &str, iface: &str, up: bool) -> Result<(), LabError> {
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        iface,
        if up { "up" } else { "down" },
    ])
    .map(|_| ())
}

/// Which traffic of the namespace a filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Packets arriving from the peers.
    Inbound,
    /// Packets sent to the peers.
    Outbound,
    /// Both: a symmetric partition.
    Both,
}

/// A filter between this namespace and `peers`: drop `loss_pct` percent of the
/// matching packets (100 = all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub peers: Vec<IpAddr>,
    pub direction: Direction,
    pub loss_pct: u8,
}

/// The nftables script for `filter`, replacing any earlier lab rules (pure).
pub fn nft_script(filter: &Filter) -> Result<String, LabError> {
    if filter.loss_pct == 0 || filter.loss_pct > 100 {
        return Err(LabError::Invalid {
            what: "loss percentage".into(),
            detail: format!("{} (1..=100)", filter.loss_pct),
        });
    }
    if filter.peers.is_empty() {
        return Err(LabError::Invalid {
            what: "filter".into(),
            detail: "no peer addresses".into(),
        });
    }
    let verdict = if filter.loss_pct >= 100 {
        "drop".to_string()
    } else {
        format!("numgen random mod 100 < {} drop", filter.loss_pct)
    };
    let set = |v6: bool| -> Option<String> {
        let members: Vec<String> = filter
            .peers
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(IpAddr::to_string)
            .collect();
        (!members.is_empty()).then(|| format!("{{ {} }}", members.join(", ")))
    };
    let rules = |field: &str| -> String {
        let mut out = String::new();
        for (family, v6) in [("ip", false), ("ip6", true)] {
            if let Some(s) = set(v6) {
                out.push_str(&format!("\t\t{family} {field} {s} {verdict}\n"));
            }
        }
        out
    };
    let inbound = matches!(filter.direction, Direction::Inbound | Direction::Both);
    let outbound = matches!(filter.direction, Direction::Outbound | Direction::Both);
    // `add table` then `delete table` makes the script idempotent: it replaces old rules.
    let mut s = format!("add table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n");
    s.push_str(&format!("table inet {NFT_TABLE} {{\n"));
    if inbound {
        s.push_str("\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n");
        s.push_str(&rules("saddr"));
        s.push_str("\t}\n");
    }
    if outbound {
        s.push_str("\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n");
        s.push_str(&rules("daddr"));
        s.push_str("\t}\n");
    }
    s.push_str("}\n");
    Ok(s)
}

/// Applies `filter` inside namespace `ns` (lab namespaces only: callers pass `Lab` names).
pub fn apply_filter(ns: &str, filter: &Filter) -> Result<(), LabError> {
    let script = nft_script(filter)?;
    let cmd = format!("ip netns exec {ns} nft -f -");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| LabError::io("nft stdin", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io("nft", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            cmd,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Removes the lab's nftables table from `ns` (heals a partition).
pub fn clear_filter(ns: &str) -> Result<(), LabError> {
    let args: Vec<String> = [
        "netns", "exec", ns, "nft", "delete", "table", "inet", NFT_TABLE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    run("ip", &args).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> Vec<IpAddr> {
        vec![
            "10.77.0.12".parse().unwrap(),
            "10.77.0.13".parse().unwrap(),
            "fd77::c".parse().unwrap(),
        ]
    }

    #[test]
    fn partition_drops_both_ways_for_both_families() {
        let s = nft_script(&Filter {
            peers: peers(),
            direction: Direction::Both,
            loss_pct: 100,
        })
        .unwrap();
        assert!(
            s.contains("ip saddr { 10.77.0.12, 10.77.0.13 } drop"),
            "{s}"
        );
        assert!(
            s.contains("ip daddr { 10.77.0.12, 10.77.0.13 } drop"),
            "{s}"
        );
        assert!(s.contains("ip6 saddr { fd77::c } drop"), "{s}");
        assert!(s.contains("hook input") && s.contains("hook output"));
        assert!(!s.contains("numgen"));
        assert!(s.starts_with("add table inet fo_lab\ndelete table inet fo_lab\n"));
    }

    #[test]
    fn one_way_loss_is_random_and_outbound_only() {
        let s = nft_script(&Filter {
            peers: peers()[..2].to_vec(),
            direction: Direction::Outbound,
            loss_pct: 30,
        })
        .unwrap();
        assert!(s.contains("ip daddr { 10.77.0.12, 10.77.0.13 } numgen random mod 100 < 30 drop"));
        assert!(!s.contains("hook input"));
        assert!(!s.contains("ip6"));
    }

    #[test]
    fn rejects_empty_and_out_of_range_filters() {
        let mut f = Filter {
            peers: vec![],
            direction: Direction::Both,
            loss_pct: 100,
        };
        assert!(nft_script(&f).is_err());
        f.peers = peers();
        f.loss_pct = 0;
        assert!(nft_script(&f).is_err());
        f.loss_pct = 101;
        assert!(nft_script(&f).is_err());
    }

    #[test]
    fn signal_names_match_kill() {
        assert_eq!(Signal::Kill.name(), "KILL");
        assert_eq!(Signal::Cont.name(), "CONT");
    }
}
