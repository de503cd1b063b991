//! The VIP driver: puts virtual IP addresses on this node's interfaces over netlink,
//! with a finite kernel-enforced lifetime, takes them off again, and announces them
//! with gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6).
//!
//! Owns the VIP addresses of this node and the frames that announce them. Must never
//! decide whether this node should hold a VIP (the agent's cores decide), never shell
//! out to `ip`, and never add an address without a lifetime: the lifetime is the
//! fence that removes the VIP of a killed or frozen agent without any help.
//!
//! The driver works in the network namespace of the thread that called
//! [`VipDriver::new`] (the netlink socket is opened there).
//!
//! ```no_run
//! use std::time::Duration;
//! use failover::agent::vip::{VipDriver, VirtualIp};
//!
//! # async fn run() -> Result<(), failover::agent::vip::VipError> {
//! let driver = VipDriver::new()?;
//! let vip = VirtualIp { address: [10, 77, 0, 100].into(), prefix_len: 24, interface: None };
//! driver.remove_stale(std::slice::from_ref(&vip)).await?; // on start: a crash leaves nothing
//! let bound = driver.resolve(&vip).await?; // the interface holding 10.77.0.0/24
//! driver.acquire(&bound, Duration::from_secs(1)).await?; // renew well before it expires
//! driver.announce(&bound, 3, Duration::from_millis(20)).await?;
//! driver.release(&bound).await?; // graceful leave
//! # Ok(()) }
//! ```

pub mod packet;
mod socket;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, CacheInfo,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use tracing::{debug, info};

use self::packet::Mac;
use self::socket::PacketSocket;

/// A virtual IP as the agent wants it: address, CIDR prefix, optional interface.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VirtualIp {
    /// The address itself.
    pub address: IpAddr,
    /// CIDR prefix length the address is added with (e.g. 24 for 10.77.0.100/24).
    pub prefix_len: u8,
    /// Interface to add it on; `None` picks the interface that has an address whose
    /// subnet contains the VIP.
    pub interface: Option<String>,
}

impl fmt::Display for VirtualIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// A [`VirtualIp`] resolved to one interface of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundVip {
    vip: VirtualIp,
    ifindex: u32,
    interface: String,
    mac: Option<Mac>,
}

impl BoundVip {
    /// The VIP this binding is for.
    pub fn vip(&self) -> &VirtualIp {
        &self.vip
    }

    /// Name of the interface the VIP goes on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Kernel index of that interface.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

/// Everything the VIP driver can fail at.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("cannot open a netlink route socket")]
    Connection(#[source] io::Error),
    #[error("VIP {vip}: prefix length is longer than the address")]
    InvalidPrefix { vip: VirtualIp },
    #[error("VIP {vip}: interface {interface} does not exist on this node")]
    UnknownInterface { vip: VirtualIp, interface: String },
    #[error("VIP {vip}: no interface has an address in its subnet (name one with `interface`)")]
    NoInterface { vip: VirtualIp },
    #[error("cannot list the node's {what} over netlink")]
    Dump {
        what: &'static str,
        // Boxed: rtnetlink::Error can carry a whole netlink message.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("VIP {vip} on {interface}: netlink {op} failed")]
    Netlink {
        op: &'static str,
        vip: VirtualIp,
        interface: String,
        // Boxed: rtnetlink::Error can carry a whole netlink message.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("VIP {vip} on {interface}: the interface has no Ethernet address to announce")]
    NoHardwareAddress { vip: VirtualIp, interface: String },
    #[error("VIP {vip} on {interface}: cannot send announcement")]
    Announce {
        vip: VirtualIp,
        interface: String,
        #[source]
        source: io::Error,
    },
}

/// Adds, renews, removes and announces VIPs on this node. Cheap to clone: clones
/// share one netlink connection.
#[derive(Clone, Debug)]
pub struct VipDriver {
    handle: rtnetlink::Handle,
    /// One transmit-only packet socket per interface, opened ahead of a takeover:
    /// binding an AF_PACKET socket waits for an RCU grace period in the kernel
    /// (about 10 ms measured here), which must not delay the first gratuitous ARP.
    sockets: Arc<Mutex<BTreeMap<u32, Arc<PacketSocket>>>>,
}

impl VipDriver {
    /// Opens a netlink route connection in the calling thread's network namespace
    /// and spawns its task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn new() -> Result<Self, VipError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(VipError::Connection)?;
        tokio::spawn(connection);
        Ok(Self {
            handle,
            sockets: Arc::default(),
        })
    }

    /// Chooses the interface for `vip`: the named one if given, else the interface
    /// with an address whose subnet contains the VIP (longest prefix wins, then the
    /// lowest interface index, so the choice is stable).
    pub async fn resolve(&self, vip: &VirtualIp) -> Result<BoundVip, VipError> {
        let max_prefix = if vip.address.is_ipv4() { 32 } else { 128 };
        if vip.prefix_len > max_prefix {
            return Err(VipError::InvalidPrefix { vip: vip.clone() });
        }
        let links = self.links().await?;
        let link = match &vip.interface {
            Some(name) => links
                .into_iter()
                .find(|link| link.name == *name)
                .ok_or_else(|| VipError::UnknownInterface {
                    vip: vip.clone(),
                    interface: name.clone(),
                })?,
            None => choose_interface(vip.address, &self.on_link().await?)
                .and_then(|index| links.into_iter().find(|link| link.index == index))
                .ok_or_else(|| VipError::NoInterface { vip: vip.clone() })?,
        };
        Ok(BoundVip {
            vip: vip.clone(),
            ifindex: link.index,
            interface: link.name,
            mac: link.mac,
        })
    }

    /// Whether this node may own `vip`: its interface (named or found) carries an
    /// address, other than the VIP itself, whose subnet contains the VIP, so the VIP
    /// is on this node's L2 segment and announcements reach its neighbours.
    pub async fn eligible(&self, vip: &VirtualIp) -> Result<bool, VipError> {
        let bound = match self.resolve(vip).await {
            Ok(bound) => bound,
            Err(VipError::UnknownInterface { .. } | VipError::NoInterface { .. }) => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        Ok(self.on_link().await?.iter().any(|a| {
            a.index == bound.ifindex && a.address != vip.address && a.contains(vip.address)
        }))
    }

    /// Adds the VIP with `valid_lft` = `preferred_lft` = `lifetime` rounded up to whole
    /// seconds (at least 1, never infinite), or, if it is already there, renews that
    /// lifetime in place (NLM_F_REPLACE: the address never disappears in between).
    pub async fn acquire(&self, bound: &BoundVip, lifetime: Duration) -> Result<(), VipError> {
        let secs = lifetime_secs(lifetime);
        let vip = &bound.vip;
        let mut request = self
            .handle
            .address()
            .add(bound.ifindex, vip.address, vip.prefix_len)
            .replace();
        let message = request.message_mut();
        let mut cache = CacheInfo::default();
        cache.ifa_valid = secs;
        cache.ifa_preferred = secs;
        message.attributes.push(AddressAttribute::CacheInfo(cache));
        if vip.address.is_ipv6() {
            // Without NODAD a new IPv6 address is "tentative" for about a second
            // (duplicate address detection): unusable as a source and not answering
            // neighbour solicitations, which is outage right after a takeover. Worse,
            // DAD would see the old owner's copy during a handover and mark ours
            // "dadfailed" for good. Uniqueness is the cluster's job (quorum, epochs and
            // this lifetime fence), not DAD's.
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request
            .execute()
            .await
            .map_err(|source| VipError::Netlink {
                op: "add",
                vip: vip.clone(),
                interface: bound.interface.clone(),
                source: Box::new(source),
            })?;
        debug!(%vip, interface = %bound.interface, lifetime_s = secs, "VIP held");
        Ok(())
    }

    /// Removes the VIP from its interface; Ok if it is not there.
    pub async fn release(&self, bound: &BoundVip) -> Result<(), VipError> {
        let instances = self.instances(bound).await?;
        let held = !instances.is_empty();
        for message in instances {
            self.delete(message, &bound.vip, &bound.interface).await?;
        }
        if held {
            info!(vip = %bound.vip, interface = %bound.interface, "VIP released");
        }
        Ok(())
    }

    /// Whether the VIP is on its interface now (with any prefix length).
    pub async fn held(&self, bound: &BoundVip) -> Result<bool, VipError> {
        Ok(!self.instances(bound).await?.is_empty())
    }

    /// Removes every address of `vips` found on any interface of this node and
    /// returns how many it removed. Called on start, before this node owns anything,
    /// so that what a crashed agent left behind cannot answer for the VIP.
    pub async fn remove_stale(&self, vips: &[VirtualIp]) -> Result<usize, VipError> {
        let links = self.links().await?;
        let mut removed = 0;
        for message in self.addresses().await? {
            let Some(on_link) = OnLink::of(&message) else {
                continue;
            };
            let Some(vip) = vips.iter().find(|vip| vip.address == on_link.address) else {
                continue;
            };
            let interface = links
                .iter()
                .find(|link| link.index == on_link.index)
                .map_or_else(|| format!("#{}", on_link.index), |link| link.name.clone());
            self.delete(message, vip, &interface).await?;
            info!(%vip, %interface, "removed stale VIP");
            removed += 1;
        }
        Ok(removed)
    }

    /// Sends `count` gratuitous ARPs (IPv4) or unsolicited NAs (IPv6) for the VIP out
    /// of its interface, `spacing` apart, so neighbours and switches move their
    /// entries to this node. Needs CAP_NET_RAW.
    pub async fn announce(
        &self,
        bound: &BoundVip,
        count: u32,
        spacing: Duration,
    ) -> Result<(), VipError> {
        let vip = &bound.vip;
        let mac = bound.mac.ok_or_else(|| VipError::NoHardwareAddress {
            vip: vip.clone(),
            interface: bound.interface.clone(),
        })?;
        let frame = match vip.address {
            IpAddr::V4(address) => packet::gratuitous_arp(mac, address),
            IpAddr::V6(address) => packet::unsolicited_na(mac, address),
        };
        let failed = |source| VipError::Announce {
            vip: vip.clone(),
            interface: bound.interface.clone(),
            source,
        };
        let socket = self.packet_socket(bound.ifindex).map_err(failed)?;
        for sent in 0..count {
            if sent > 0 {
                tokio::time::sleep(spacing).await;
            }
            socket.send(&frame).map_err(failed)?;
        }
        debug!(%vip, interface = %bound.interface, count, "VIP announced");
        Ok(())
    }

    /// Opens (once) the socket announcements of `bound` leave through, so that a
    /// takeover finds it ready.
    pub fn prepare(&self, bound: &BoundVip) -> Result<(), VipError> {
        self.packet_socket(bound.ifindex)
            .map(drop)
            .map_err(|source| VipError::Announce {
                vip: bound.vip.clone(),
                interface: bound.interface.clone(),
                source,
            })
    }

    fn packet_socket(&self, ifindex: u32) -> io::Result<Arc<PacketSocket>> {
        // A poisoned lock only means another thread panicked while inserting; the
        // map itself is still a valid cache.
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(socket) = sockets.get(&ifindex) {
            return Ok(socket.clone());
        }
        let socket = Arc::new(PacketSocket::bind(ifindex, 0)?);
        sockets.insert(ifindex, socket.clone());
        Ok(socket)
    }

    async fn links(&self) -> Result<Vec<Link>, VipError> {
        let messages: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| VipError::Dump {
                what: "interfaces",
                source: Box::new(source),
            })?;
        Ok(messages.iter().filter_map(Link::of).collect())
    }

    async fn addresses(&self) -> Result<Vec<AddressMessage>, VipError> {
        self.handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| VipError::Dump {
                what: "addresses",
                source: Box::new(source),
            })
    }

    async fn on_link(&self) -> Result<Vec<OnLink>, VipError> {
        Ok(self
            .addresses()
            .await?
            .iter()
            .filter_map(OnLink::of)
            .collect())
    }

    /// The kernel's entries for the VIP on its interface.
    async fn instances(&self, bound: &BoundVip) -> Result<Vec<AddressMessage>, VipError> {
        Ok(self
            .addresses()
            .await?
            .into_iter()
            .filter(|message| {
                OnLink::of(message)
                    .is_some_and(|a| a.index == bound.ifindex && a.address == bound.vip.address)
            })
            .collect())
    }

    async fn delete(
        &self,
        message: AddressMessage,
        vip: &VirtualIp,
        interface: &str,
    ) -> Result<(), VipError> {
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            // Gone between the dump and the delete (its lifetime ran out, or another
            // call removed it): that is the state we want.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EADDRNOTAVAIL => {
                Ok(())
            }
            Err(source) => Err(VipError::Netlink {
                op: "delete",
                vip: vip.clone(),
                interface: interface.to_owned(),
                source: Box::new(source),
            }),
        }
    }
}

/// The whole seconds the kernel gets: rounded up so the VIP never lives shorter than
/// asked, at least 1 (0 would remove the address at once), and below u32::MAX, which
/// the kernel reads as "forever" and would defeat the fence.
fn lifetime_secs(lifetime: Duration) -> u32 {
    let secs = lifetime
        .as_secs()
        .saturating_add(u64::from(lifetime.subsec_nanos() > 0));
    u32::try_from(secs)
        .unwrap_or(u32::MAX)
        .clamp(1, u32::MAX - 1)
}

/// An interface of this node, as far as the driver cares.
struct Link {
    index: u32,
    name: String,
    mac: Option<Mac>,
}

impl Link {
    fn of(message: &LinkMessage) -> Option<Self> {
        let mut name = None;
        let mut mac = None;
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                // Loopback reports an all-zero address: nothing to announce with.
                LinkAttribute::Address(bytes) => {
                    mac = Mac::try_from(bytes.as_slice())
                        .ok()
                        .filter(|m| *m != [0; 6]);
                }
                _ => {}
            }
        }
        Some(Self {
            index: message.header.index,
            name: name?,
            mac,
        })
    }
}

/// An address on an interface with its prefix, i.e. the subnet it puts on that link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OnLink {
    index: u32,
    address: IpAddr,
    prefix_len: u8,
}

impl OnLink {
    fn of(message: &AddressMessage) -> Option<Self> {
        // IFA_LOCAL is the node's own address (it differs from IFA_ADDRESS, the peer,
        // on point-to-point links); IPv6 messages carry only IFA_ADDRESS.
        let mut local = None;
        let mut address = None;
        for attribute in &message.attributes {
            match attribute {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                _ => {}
            }
        }
        Some(Self {
            index: message.header.index,
            address: local.or(address)?,
            prefix_len: message.header.prefix_len,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len.min(32)))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len.min(128)))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The interface whose own subnet contains `vip` (not counting the VIP itself, so a
/// held VIP does not vouch for itself): longest prefix, then lowest index.
fn choose_interface(vip: IpAddr, on_link: &[OnLink]) -> Option<u32> {
    on_link
        .iter()
        .filter(|a| a.address != vip && a.contains(vip))
        .max_by_key(|a| (a.prefix_len, std::cmp::Reverse(a.index)))
        .map(|a| a.index)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn on(index: u32, cidr: &str) -> OnLink {
        let (address, prefix) = cidr.split_once('/').unwrap();
        OnLink {
            index,
            address: address.parse().unwrap(),
            prefix_len: prefix.parse().unwrap(),
        }
    }

    #[test]
    fn lifetime_is_whole_seconds_rounded_up_and_finite() {
        assert_eq!(lifetime_secs(Duration::ZERO), 1);
        assert_eq!(lifetime_secs(Duration::from_millis(1)), 1);
        assert_eq!(lifetime_secs(Duration::from_secs(1)), 1);
        assert_eq!(lifetime_secs(Duration::from_millis(1001)), 2);
        assert_eq!(lifetime_secs(Duration::from_millis(2500)), 3);
        assert_eq!(lifetime_secs(Duration::MAX), u32::MAX - 1);
    }

    #[test]
    fn subnet_containment() {
        assert!(on(1, "10.77.0.1/24").contains("10.77.0.100".parse().unwrap()));
        assert!(!on(1, "10.77.0.1/24").contains("10.77.1.100".parse().unwrap()));
        assert!(on(1, "0.0.0.0/0").contains("192.0.2.1".parse().unwrap()));
        assert!(on(1, "fd77::1/64").contains("fd77::100".parse().unwrap()));
        assert!(!on(1, "fd77::1/64").contains("fd78::100".parse().unwrap()));
        assert!(!on(1, "fd77::1/64").contains("10.77.0.1".parse().unwrap()));
        assert!(on(1, "fd77::1/128").contains("fd77::1".parse().unwrap()));
    }

    #[test]
    fn interface_choice_prefers_longest_prefix_then_lowest_index() {
        let vip: IpAddr = "10.77.0.100".parse().unwrap();
        let addrs = [
            on(5, "10.0.0.1/8"),
            on(4, "10.77.0.1/24"),
            on(3, "10.77.0.2/24"),
            on(2, "192.0.2.1/24"),
        ];
        assert_eq!(choose_interface(vip, &addrs), Some(3));
        assert_eq!(choose_interface(vip, &addrs[..1]), Some(5));
        assert_eq!(choose_interface(vip, &addrs[3..]), None);
        // A node that already holds the VIP is not on its subnet because of it.
        assert_eq!(choose_interface(vip, &[on(7, "10.77.0.100/24")]), None);
    }
}
