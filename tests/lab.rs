//! Root integration test of the lab: a 2-node lab, echo responders, a VIP assigned
//! by hand, the probe sees the right node and no split brain, then sees the VIP move.
//! Skips (passes with a message) when not root or `ip` is missing.
#![cfg(feature = "lab")]

use std::path::Path;
use std::time::Duration;

use failover::lab::bench::{echo_args, parse_summary, probe_args, wait_output};
use failover::lab::probe::Summary;
use failover::lab::topology::{self, IFACE, Lab, ip};

const VIP: &str = "10.77.0.100";
const PORT: u16 = 7100;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_failover"))
}

fn probe(lab: &mut Lab, duration: Duration) -> std::process::Child {
    let client = lab.client_ns();
    lab.spawn_piped(
        &client,
        exe(),
        &probe_args(PORT, Duration::from_millis(2), duration),
    )
    .unwrap()
}

fn summary(child: std::process::Child) -> Summary {
    // Generous: the probe ends by itself after its duration.
    parse_summary(&wait_output(child, Duration::from_secs(30)).unwrap()).unwrap()
}

#[test]
fn probe_sees_the_vip_holder_and_its_move() {
    if let Err(why) = topology::check_prerequisites() {
        eprintln!("skipping lab test: {why}");
        return;
    }
    let mut lab = Lab::up(2).unwrap();
    let prefix = lab.prefix().to_string();
    let (n1, n2, client) = (lab.node_ns(1), lab.node_ns(2), lab.client_ns());
    for (i, ns) in [(1, &n1), (2, &n2)] {
        lab.spawn(
            ns,
            exe(),
            &echo_args(PORT, &format!("n{i}"), Duration::from_secs(120)),
            None,
        )
        .unwrap();
    }
    ip(&["-n", &n1, "addr", "add", &format!("{VIP}/24"), "dev", IFACE]).unwrap();
    // Let the echo responders bind.
    std::thread::sleep(Duration::from_millis(300));

    let s = summary(probe(&mut lab, Duration::from_millis(1000)));
    assert!(s.answered > s.sent / 2, "most probes answered: {s:?}");
    assert_eq!(s.nodes, vec!["n1"], "{s:?}");
    assert_eq!(s.split_brain, 0, "{s:?}");
    assert_eq!(s.macs.len(), 1, "one MAC answers ARP: {s:?}");

    // Move the VIP while a probe runs: remove, add on n2, and make the client forget
    // the old MAC (what a gratuitous ARP from the new holder would do).
    let running = probe(&mut lab, Duration::from_millis(1500));
    std::thread::sleep(Duration::from_millis(500));
    ip(&["-n", &n1, "addr", "del", &format!("{VIP}/24"), "dev", IFACE]).unwrap();
    ip(&["-n", &n2, "addr", "add", &format!("{VIP}/24"), "dev", IFACE]).unwrap();
    ip(&["-n", &client, "neigh", "flush", "to", VIP]).unwrap();
    let s = summary(running);
    assert_eq!(s.nodes, vec!["n1", "n2"], "{s:?}");
    assert_eq!(s.before.as_deref(), Some("n1"), "{s:?}");
    assert_eq!(s.after.as_deref(), Some("n2"), "{s:?}");
    assert!(s.recovered, "{s:?}");
    assert_eq!(s.split_brain, 0, "{s:?}");
    assert_eq!(s.macs.len(), 2, "{s:?}");

    lab.down().unwrap();
    let left = ip(&["netns", "list"]).unwrap();
    assert!(
        !topology::parse_netns_list(&left)
            .iter()
            .any(|ns| ns.starts_with(&format!("{prefix}-"))),
        "namespaces left behind: {left}"
    );
}

#[test]
fn dropping_a_lab_removes_its_namespaces() {
    if let Err(why) = topology::check_prerequisites() {
        eprintln!("skipping lab test: {why}");
        return;
    }
    let prefix = {
        let lab = Lab::up(1).unwrap();
        assert!(topology::holds_address(&lab.node_ns(1), "10.77.0.11").unwrap());
        // A second lab may not take a prefix in use, and its failure must not tear
        // down the first one.
        assert!(Lab::up_with_prefix(lab.prefix(), &topology::Topology::plain(1)).is_err());
        assert!(topology::holds_address(&lab.node_ns(1), "10.77.0.11").unwrap());
        lab.prefix().to_string()
    };
    let left = ip(&["netns", "list"]).unwrap();
    assert!(
        !topology::parse_netns_list(&left)
            .iter()
            .any(|ns| ns.starts_with(&format!("{prefix}-"))),
        "namespaces left behind: {left}"
    );
}
