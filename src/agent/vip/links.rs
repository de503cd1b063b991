//! The links of this node and the subnets on them, kept from rtnetlink
//! notifications (`RTMGRP_LINK` and the IPv4/IPv6 address groups), so that the
//! agent learns at once when the interface of a VIP goes administratively down,
//! loses its carrier or vanishes, and when it is back.
//!
//! [`LinkTable`] is the sans-IO part: it applies netlink messages and answers which
//! interface a VIP goes on and whether that interface is up. [`LinkWatch`] is the
//! thin shell: one subscribed netlink socket, a full dump at the start and after a
//! lost notification (socket buffer overrun), and a task that publishes every
//! change of the table.
//!
//! Owns that table. Must never change a link or an address, and never decide what
//! the agent does about a link that is down (the resources tell the engine, the
//! engine decides).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{OnLink, VirtualIp, choose_interface};
use crate::telemetry::error_report;

/// After the subscription failed or its socket closed, how long the watcher waits
/// before it subscribes again.
const RESUBSCRIBE: Duration = Duration::from_secs(1);

/// What the link watcher can fail at (it logs and subscribes again).
#[derive(Debug, thiserror::Error)]
pub enum LinkWatchError {
    #[error("cannot subscribe to the node's link and address notifications")]
    Subscribe(#[source] std::io::Error),
    #[error("cannot list the node's {what} over netlink")]
    Dump {
        what: &'static str,
        // Boxed: rtnetlink::Error can carry a whole netlink message.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("the netlink notification socket closed")]
    Closed,
}

/// Whether an interface can carry a VIP now, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkHealth {
    /// Administratively up, carrier present, operationally up.
    Up,
    /// Administratively down (`ip link set dev X down`).
    AdminDown,
    /// Up, but no carrier (cable, switch port, or a veth whose peer is down).
    NoCarrier,
    /// Carrier present but the operational state is not up (dormant, testing).
    NotRunning,
    /// No interface of that name on this node (deleted, renamed, moved away).
    Absent,
}

impl LinkHealth {
    pub fn is_up(self) -> bool {
        self == LinkHealth::Up
    }

    /// Stable label (logs).
    pub fn label(self) -> &'static str {
        match self {
            LinkHealth::Up => "up",
            LinkHealth::AdminDown => "admin-down",
            LinkHealth::NoCarrier => "no-carrier",
            LinkHealth::NotRunning => "not-running",
            LinkHealth::Absent => "absent",
        }
    }
}

/// One interface, as far as its health goes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LinkState {
    name: String,
    flags: LinkFlags,
}

impl LinkState {
    fn of(message: &LinkMessage) -> Option<Self> {
        let name = message.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })?;
        // Only the flags health is read from: other flag changes (promiscuous mode,
        // multicast) must not count as a change of the table.
        let relevant = LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running;
        Some(Self {
            name,
            flags: message.header.flags & relevant,
        })
    }

    fn health(&self) -> LinkHealth {
        // The kernel derives these from one state (dev_get_flags): IFF_LOWER_UP is
        // the carrier, IFF_RUNNING the operational state up (or unknown, as for
        // interfaces that do not report one).
        if !self.flags.contains(LinkFlags::Up) {
            LinkHealth::AdminDown
        } else if !self.flags.contains(LinkFlags::LowerUp) {
            LinkHealth::NoCarrier
        } else if !self.flags.contains(LinkFlags::Running) {
            LinkHealth::NotRunning
        } else {
            LinkHealth::Up
        }
    }
}

/// The links of this node with their health, and the subnets on them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkTable {
    links: BTreeMap<u32, LinkState>,
    addresses: BTreeSet<OnLink>,
}

impl LinkTable {
    /// Applies one netlink message (a notification or a dump answer); returns
    /// whether the table changed. A renewed address (only its lifetime changed) and
    /// messages of other kinds change nothing.
    pub fn apply(&mut self, message: &RouteNetlinkMessage) -> bool {
        match message {
            RouteNetlinkMessage::NewLink(link) => {
                let index = link.header.index;
                match LinkState::of(link) {
                    Some(state) if self.links.get(&index) != Some(&state) => {
                        self.links.insert(index, state);
                        true
                    }
                    _ => false,
                }
            }
            RouteNetlinkMessage::DelLink(link) => {
                let index = link.header.index;
                let before = self.addresses.len();
                // The kernel removes a deleted interface's addresses with it.
                self.addresses.retain(|a| a.index != index);
                self.links.remove(&index).is_some() || self.addresses.len() != before
            }
            RouteNetlinkMessage::NewAddress(address) => {
                OnLink::of(address).is_some_and(|a| self.addresses.insert(a))
            }
            RouteNetlinkMessage::DelAddress(address) => {
                OnLink::of(address).is_some_and(|a| self.addresses.remove(&a))
            }
            _ => false,
        }
    }

    /// The health of the interface named `name`.
    pub fn health(&self, name: &str) -> LinkHealth {
        self.links
            .values()
            .find(|l| l.name == name)
            .map_or(LinkHealth::Absent, LinkState::health)
    }

    /// The interface `vip` goes on: the one it names, else the one whose own subnet
    /// contains it (as [`super::VipDriver::resolve`] chooses); `None` when no
    /// interface has its subnet.
    pub fn interface_of(&self, vip: &VirtualIp) -> Option<String> {
        if let Some(name) = &vip.interface {
            return Some(name.clone());
        }
        let on_link: Vec<OnLink> = self.addresses.iter().copied().collect();
        let index = choose_interface(vip.address, &on_link)?;
        self.links.get(&index).map(|l| l.name.clone())
    }

    fn replace(&mut self, fresh: LinkTable) -> bool {
        let changed = *self != fresh;
        *self = fresh;
        changed
    }
}

/// Watches this node's links: a task keeps the [`LinkTable`] from netlink
/// notifications and publishes every change. Aborts its task when dropped.
#[derive(Debug)]
pub struct LinkWatch {
    table: watch::Receiver<LinkTable>,
    task: JoinHandle<()>,
}

impl LinkWatch {
    /// Subscribes in the calling thread's network namespace (the socket is opened
    /// there, before this returns), reads the links and addresses once, then keeps
    /// them from the notifications on the current tokio runtime.
    pub async fn open() -> Result<Self, LinkWatchError> {
        let subscription = Subscription::open()?;
        let table = subscription.dump().await?;
        let (publish, receive) = watch::channel(table);
        let task = tokio::spawn(watch_links(subscription, publish));
        Ok(Self {
            table: receive,
            task,
        })
    }

    /// The table as it is now.
    pub fn table(&mut self) -> LinkTable {
        self.table.borrow_and_update().clone()
    }

    /// Resolves when the table changed since the last [`LinkWatch::table`]; never
    /// once the watcher ended (it does not, short of a panic).
    pub async fn changed(&mut self) {
        if self.table.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for LinkWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One subscribed netlink socket: notifications come in `messages`, dumps go
/// through `handle`.
struct Subscription {
    handle: Handle,
    messages: futures::channel::mpsc::UnboundedReceiver<(
        rtnetlink::packet_core::NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
    connection: JoinHandle<()>,
}

impl Subscription {
    /// Subscribes first, dumps after: a change in between arrives as a
    /// notification and is applied after the dump, so none is missed.
    fn open() -> Result<Self, LinkWatchError> {
        let (connection, handle, messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(LinkWatchError::Subscribe)?;
        Ok(Self {
            handle,
            messages,
            connection: tokio::spawn(connection),
        })
    }

    async fn dump(&self) -> Result<LinkTable, LinkWatchError> {
        let failed = |what| {
            move |source| LinkWatchError::Dump {
                what,
                source: Box::new(source),
            }
        };
        let mut table = LinkTable::default();
        let mut links = self.handle.link().get().execute();
        while let Some(link) = links.try_next().await.map_err(failed("interfaces"))? {
            table.apply(&RouteNetlinkMessage::NewLink(link));
        }
        let mut addresses = self.handle.address().get().execute();
        while let Some(address) = addresses.try_next().await.map_err(failed("addresses"))? {
            table.apply(&RouteNetlinkMessage::NewAddress(address));
        }
        Ok(table)
    }

    /// Applies notifications until the socket fails; dumps again after an overrun.
    async fn follow(&mut self, publish: &watch::Sender<LinkTable>) -> LinkWatchError {
        while let Some((message, _)) = self.messages.next().await {
            match message.payload {
                NetlinkPayload::InnerMessage(inner) => {
                    publish.send_if_modified(|table| table.apply(&inner));
                }
                NetlinkPayload::Overrun(_) => {
                    warn!("link notifications lost (socket buffer full); reading the links again");
                    match self.dump().await {
                        Ok(fresh) => {
                            publish.send_if_modified(|table| table.replace(fresh));
                        }
                        Err(error) => return error,
                    }
                }
                _ => {}
            }
        }
        LinkWatchError::Closed
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The watcher task: follows the notifications, and when its socket fails,
/// subscribes again (a fresh dump replaces the table) every [`RESUBSCRIBE`].
async fn watch_links(mut subscription: Subscription, publish: watch::Sender<LinkTable>) {
    loop {
        let error = subscription.follow(&publish).await;
        warn!(error = %error_report(&error), "link watch interrupted; subscribing again");
        subscription = loop {
            tokio::time::sleep(RESUBSCRIBE).await;
            let renewed = match Subscription::open() {
                Ok(s) => s.dump().await.map(|table| (s, table)),
                Err(error) => Err(error),
            };
            match renewed {
                Ok((s, fresh)) => {
                    publish.send_if_modified(|table| table.replace(fresh));
                    info!("link watch subscribed again");
                    break s;
                }
                Err(error) => {
                    warn!(error = %error_report(&error), "cannot subscribe to link notifications; retrying");
                }
            }
        };
    }
}

/// Kernel messages for tests of the link table and of what is decided from it.
#[cfg(test)]
pub(crate) mod fixtures {
    use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
    use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

    /// A link message for interface `index` named `name` with `flags`.
    pub(crate) fn link_message(index: u32, name: &str, flags: LinkFlags) -> LinkMessage {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = flags;
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        message
    }

    /// An address message for `cidr` on interface `index`.
    pub(crate) fn address_message(index: u32, cidr: &str) -> AddressMessage {
        let (ip, prefix) = cidr.split_once('/').unwrap();
        let mut message = AddressMessage::default();
        message.header.index = index;
        message.header.prefix_len = prefix.parse().unwrap();
        message
            .attributes
            .push(AddressAttribute::Address(ip.parse().unwrap()));
        message
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{address_message as address, link_message};
    use super::*;

    fn link(index: u32, name: &str, flags: LinkFlags) -> RouteNetlinkMessage {
        RouteNetlinkMessage::NewLink(link_message(index, name, flags))
    }

    fn up() -> LinkFlags {
        LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running | LinkFlags::Broadcast
    }

    fn vip(cidr: &str, interface: Option<&str>) -> VirtualIp {
        let (ip, prefix) = cidr.split_once('/').unwrap();
        VirtualIp {
            address: ip.parse().unwrap(),
            prefix_len: prefix.parse().unwrap(),
            interface: interface.map(str::to_owned),
        }
    }

    #[test]
    fn health_follows_the_flags_and_the_links_presence() {
        let mut table = LinkTable::default();
        assert!(table.apply(&link(2, "eth0", up())));
        assert_eq!(table.health("eth0"), LinkHealth::Up);
        assert!(table.apply(&link(2, "eth0", LinkFlags::Broadcast)));
        assert_eq!(table.health("eth0"), LinkHealth::AdminDown);
        assert!(table.apply(&link(2, "eth0", LinkFlags::Up)));
        assert_eq!(table.health("eth0"), LinkHealth::NoCarrier);
        assert!(table.apply(&link(2, "eth0", LinkFlags::Up | LinkFlags::LowerUp)));
        assert_eq!(table.health("eth0"), LinkHealth::NotRunning);
        assert_eq!(table.health("eth9"), LinkHealth::Absent);
        let RouteNetlinkMessage::NewLink(gone) = link(2, "eth0", up()) else {
            unreachable!()
        };
        assert!(table.apply(&RouteNetlinkMessage::DelLink(gone)));
        assert_eq!(table.health("eth0"), LinkHealth::Absent);
    }

    #[test]
    fn only_changes_that_matter_change_the_table() {
        let mut table = LinkTable::default();
        assert!(table.apply(&link(2, "eth0", up())));
        // Promiscuous mode is no change of health.
        assert!(!table.apply(&link(2, "eth0", up() | LinkFlags::Promisc)));
        assert!(table.apply(&RouteNetlinkMessage::NewAddress(address(2, "10.0.0.1/24"))));
        // A renewal of the same address (a VIP's lifetime) is no change.
        assert!(!table.apply(&RouteNetlinkMessage::NewAddress(address(2, "10.0.0.1/24"))));
        assert!(table.apply(&RouteNetlinkMessage::DelAddress(address(2, "10.0.0.1/24"))));
        assert!(!table.apply(&RouteNetlinkMessage::DelAddress(address(2, "10.0.0.1/24"))));
    }

    #[test]
    fn a_vip_goes_on_its_named_interface_or_the_one_with_its_subnet() {
        let mut table = LinkTable::default();
        table.apply(&link(1, "lo", up()));
        table.apply(&link(2, "eth0", up()));
        table.apply(&link(3, "eth1", up()));
        table.apply(&RouteNetlinkMessage::NewAddress(address(2, "10.0.0.1/24")));
        table.apply(&RouteNetlinkMessage::NewAddress(address(3, "10.1.0.1/24")));
        // The VIP itself on loopback vouches for nothing.
        table.apply(&RouteNetlinkMessage::NewAddress(address(
            1,
            "10.1.0.100/32",
        )));
        assert_eq!(
            table.interface_of(&vip("10.1.0.100/24", None)).as_deref(),
            Some("eth1")
        );
        assert_eq!(
            table
                .interface_of(&vip("10.1.0.100/24", Some("eth0")))
                .as_deref(),
            Some("eth0")
        );
        assert_eq!(table.interface_of(&vip("10.9.0.100/24", None)), None);
        // A deleted interface takes its addresses with it.
        let RouteNetlinkMessage::NewLink(eth1) = link(3, "eth1", up()) else {
            unreachable!()
        };
        assert!(table.apply(&RouteNetlinkMessage::DelLink(eth1)));
        assert_eq!(table.interface_of(&vip("10.1.0.100/24", None)), None);
    }
}
