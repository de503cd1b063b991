//! The decision from link state to the groups that are unable here with
//! `InterfaceDown` (pure), and the watch against the real kernel in a network
//! namespace of its own (root; prints SKIP without the privilege).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use nix::sched::{CloneFlags, unshare};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkFlags;

use super::{Down, Interfaces, assess};
use crate::agent::metrics::Metrics;
use crate::agent::vip::VirtualIp;
use crate::agent::vip::links::fixtures::{address_message as address, link_message as link};
use crate::agent::vip::links::{LinkHealth, LinkTable};

fn up() -> LinkFlags {
    LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running
}

fn vip(cidr: &str, interface: Option<&str>) -> VirtualIp {
    let (ip, prefix) = cidr.split_once('/').unwrap();
    VirtualIp {
        address: ip.parse().unwrap(),
        prefix_len: prefix.parse().unwrap(),
        interface: interface.map(str::to_owned),
    }
}

/// `web` on eth1's subnet (IPv4 and IPv6), `db` named on eth2, `far` on no subnet.
fn groups() -> BTreeMap<String, Vec<VirtualIp>> {
    BTreeMap::from([
        (
            "web".to_owned(),
            vec![vip("10.1.0.100/24", None), vip("fd01::100/64", None)],
        ),
        ("db".to_owned(), vec![vip("10.2.0.100/24", Some("eth2"))]),
        ("far".to_owned(), vec![vip("10.9.0.100/24", None)]),
    ])
}

fn table(eth1: LinkFlags, eth2: Option<LinkFlags>, eth1_v6: bool) -> LinkTable {
    let mut table = LinkTable::default();
    table.apply(&RouteNetlinkMessage::NewLink(link(3, "eth1", eth1)));
    table.apply(&RouteNetlinkMessage::NewAddress(address(3, "10.1.0.1/24")));
    if eth1_v6 {
        table.apply(&RouteNetlinkMessage::NewAddress(address(3, "fd01::1/64")));
    }
    if let Some(flags) = eth2 {
        table.apply(&RouteNetlinkMessage::NewLink(link(4, "eth2", flags)));
    }
    table
}

fn down(interface: &str, health: LinkHealth) -> Down {
    Down {
        interface: interface.to_owned(),
        health,
    }
}

#[test]
fn groups_whose_vip_interface_is_not_up_are_down_with_that_interface() {
    let mut remembered = BTreeMap::new();
    let all_up = assess(&groups(), &table(up(), Some(up()), true), &mut remembered);
    assert!(all_up.down.is_empty(), "{all_up:?}");
    assert_eq!(
        all_up.interfaces,
        BTreeMap::from([
            ("eth1".to_owned(), LinkHealth::Up),
            ("eth2".to_owned(), LinkHealth::Up)
        ])
    );

    // eth1 administratively down: the kernel flushed its IPv6 subnet, the VIP is
    // still known to go on eth1. eth2 lost its carrier.
    let now = assess(
        &groups(),
        &table(LinkFlags::empty(), Some(LinkFlags::Up), false),
        &mut remembered,
    );
    assert_eq!(
        now.down,
        BTreeMap::from([
            ("web".to_owned(), down("eth1", LinkHealth::AdminDown)),
            ("db".to_owned(), down("eth2", LinkHealth::NoCarrier)),
        ])
    );

    // eth2 vanished: a named interface that is absent is down.
    let now = assess(&groups(), &table(up(), None, true), &mut remembered);
    assert_eq!(
        now.down,
        BTreeMap::from([("db".to_owned(), down("eth2", LinkHealth::Absent))])
    );

    // An interface seen once and then deleted with its subnets: still its VIP's.
    let now = assess(&groups(), &LinkTable::default(), &mut remembered);
    assert_eq!(now.down["web"], down("eth1", LinkHealth::Absent));
    // A VIP whose interface was never seen is left to the subnet check.
    assert!(!now.down.contains_key("far"));
}

#[test]
fn a_vip_that_leaves_the_configuration_is_forgotten() {
    let mut remembered = BTreeMap::new();
    assess(&groups(), &table(up(), Some(up()), true), &mut remembered);
    let only_db = BTreeMap::from([("db".to_owned(), groups()["db"].clone())]);
    assess(&only_db, &LinkTable::default(), &mut remembered);
    // web came back in the configuration after its interface vanished: unknown.
    let now = assess(&groups(), &LinkTable::default(), &mut remembered);
    assert!(!now.down.contains_key("web"), "{now:?}");
}

/// Runs `ip` with `args` in the calling thread's network namespace.
fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(output.status.success(), "ip {args:?}: {output:?}");
}

#[test]
fn the_watch_sees_admin_down_carrier_loss_and_deletion_as_they_happen() {
    let thread = std::thread::spawn(|| {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            eprintln!("SKIP interface watch: needs root for a private network namespace: {e}");
            return;
        }
        ip(&["link", "set", "lo", "up"]);
        ip(&["link", "add", "s0", "type", "veth", "peer", "name", "s0p"]);
        ip(&["link", "set", "s0", "up"]);
        ip(&["link", "set", "s0p", "up"]);
        ip(&["addr", "add", "10.1.0.1/24", "dev", "s0"]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(watch());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Waits (bounded) until the checks after link notifications find `expected`.
async fn settle(
    interfaces: &mut Interfaces,
    vips: &BTreeMap<String, Vec<VirtualIp>>,
    metrics: &Metrics,
    expected: Option<LinkHealth>,
) {
    let found = |i: &Interfaces| i.last.down.get("web").map(|d| d.health);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    interfaces.check(vips, metrics);
    while found(interfaces) != expected {
        assert!(
            tokio::time::timeout_at(deadline, interfaces.changed())
                .await
                .is_ok(),
            "no link notification led to {expected:?}; found {:?}",
            found(interfaces)
        );
        interfaces.check(vips, metrics);
    }
}

async fn watch() {
    let vips = BTreeMap::from([("web".to_owned(), vec![vip("10.1.0.100/24", None)])]);
    let metrics = Metrics::default();
    let mut interfaces = Interfaces::open().await.unwrap();
    settle(&mut interfaces, &vips, &metrics, None).await;
    assert!(
        metrics
            .render()
            .contains("failover_interface_up{interface=\"s0\"} 1")
    );

    ip(&["link", "set", "s0", "down"]);
    settle(
        &mut interfaces,
        &vips,
        &metrics,
        Some(LinkHealth::AdminDown),
    )
    .await;
    assert_eq!(interfaces.down().collect::<Vec<_>>(), ["web"]);
    ip(&["link", "set", "s0", "up"]);
    settle(&mut interfaces, &vips, &metrics, None).await;

    // The peer of a veth going down is the carrier lost.
    ip(&["link", "set", "s0p", "down"]);
    settle(
        &mut interfaces,
        &vips,
        &metrics,
        Some(LinkHealth::NoCarrier),
    )
    .await;
    ip(&["link", "set", "s0p", "up"]);
    settle(&mut interfaces, &vips, &metrics, None).await;

    ip(&["link", "del", "s0"]);
    settle(&mut interfaces, &vips, &metrics, Some(LinkHealth::Absent)).await;
    let text = metrics.render();
    assert!(
        text.contains("failover_interface_up{interface=\"s0\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("failover_interface_downs_total{interface=\"s0\"} 3"),
        "{text}"
    );
}
