//! The VIP driver: puts virtual IP addresses on this node over netlink, with a finite
//! kernel-enforced lifetime, takes them off again, announces them with gratuitous ARP
//! (IPv4) or unsolicited neighbour advertisements (IPv6), and answers ARP and
//! neighbour solicitations for them itself.
//!
//! Owns the VIP addresses of this node, the frames that announce them, the ARP/NDP
//! answers for them, and the two ARP settings of a VIP's interface it changes. Its
//! frame codec (`packet`) and packet sockets (`socket`) are the only ones in the
//! crate; the lab's probe uses them too, and nothing here uses the lab.
//! Must never decide whether this node should hold a VIP (the agent's cores decide),
//! never shell out to `ip`, and never add an address without a lifetime: the
//! lifetime is the fence that removes the VIP of a killed or frozen agent without
//! any help.
//!
//! **One answerer.** The lifetime alone would leave a killed agent's node answering
//! ARP for the VIP until it runs out (whole seconds), while the successor already
//! answers. So a VIP on an Ethernet interface goes on the node's loopback device as
//! a /32 or /128 (the kernel accepts traffic for it from any interface), and the
//! agent's responder (`responder.rs`) answers ARP or neighbour solicitations for it
//! on the interface. When the agent dies its answers stop at once, and the address
//! itself expires with its lifetime. For IPv6 that is all it takes: Linux answers a
//! solicitation only for addresses on the receiving interface. For IPv4 the
//! interface also gets `arp_ignore` = 1 (answer only for addresses configured on it)
//! and `arp_announce` = 2 (never use a VIP as the sender of the kernel's own ARP
//! requests); both are written over rtnetlink (`IFLA_AF_SPEC`/`IFLA_INET_CONF`,
//! needs only CAP_NET_ADMIN, not a writable /proc/sys), only when lower than these
//! values, and [`VipDriver::restore_kernel`] puts the previous values back on a
//! graceful exit.
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

pub mod links;
pub mod packet;
mod responder;
pub(crate) mod socket;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::packet_core::{DefaultNla, NLA_F_NESTED};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, CacheInfo,
};
use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecUnspec, LinkAttribute, LinkFlags, LinkMessage,
};
use tracing::{debug, info, warn};

use self::packet::Mac;
use self::responder::Responders;
use self::socket::PacketSocket;

/// `IFLA_INET_CONF` inside `IFLA_AF_SPEC`/`AF_INET` (linux/if_link.h).
const IFLA_INET_CONF: u16 = 1;
/// `IPV4_DEVCONF_ARP_ANNOUNCE` and `IPV4_DEVCONF_ARP_IGNORE` (linux/ip.h).
const DEVCONF_ARP_ANNOUNCE: u16 = 18;
const DEVCONF_ARP_IGNORE: u16 = 19;
/// `arp_ignore` 1: answer only for addresses configured on the receiving interface.
const QUIET_ARP_IGNORE: i32 = 1;
/// `arp_announce` 2: ARP requests carry the interface's own best address as sender.
const QUIET_ARP_ANNOUNCE: i32 = 2;

/// The VIPs the configuration names are the contract's type; the driver binds
/// them to interfaces of this node ([`BoundVip`]).
pub use crate::contract::model::VirtualIp;

/// A [`VirtualIp`] resolved to one interface of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundVip {
    vip: VirtualIp,
    ifindex: u32,
    interface: String,
    mac: Option<Mac>,
    /// Where the address goes: the loopback device when the agent answers ARP/NDP
    /// for the VIP (on an Ethernet interface), else the interface itself.
    holder: u32,
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

    /// Whether the agent answers ARP/NDP for this VIP (and the address sits on
    /// loopback, where the kernel does not answer for it on the interface).
    pub fn answered_by_agent(&self) -> bool {
        self.holder != self.ifindex
    }

    /// The interface's MAC the responder answers with, for an agent-answered VIP.
    fn answered_with(&self) -> Option<Mac> {
        self.mac.filter(|_| self.answered_by_agent())
    }
}

/// Everything the VIP driver can fail at.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("cannot open a netlink route socket")]
    Connection(#[source] io::Error),
    #[error("cannot watch the node's links")]
    LinkWatch(#[source] links::LinkWatchError),
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
    #[error("VIP {vip}: this node has no loopback device to hold it")]
    NoLoopback { vip: VirtualIp },
    #[error(
        "interface {interface}: cannot {op} its ARP settings (arp_ignore, arp_announce) over netlink"
    )]
    KernelArp {
        op: &'static str,
        interface: String,
        // Boxed: rtnetlink::Error can carry a whole netlink message.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("interface {interface}: the kernel reports no IPv4 settings for it")]
    NoInetConf { interface: String },
    #[error("VIP {vip} on {interface}: cannot start answering ARP/NDP for it")]
    Responder {
        vip: VirtualIp,
        interface: String,
        #[source]
        source: io::Error,
    },
}

/// An interface whose kernel ARP answers for VIPs are quiet: its name, and the
/// settings it had before if the driver changed them.
type Quieted = (String, Option<ArpConf>);

/// An interface's ARP settings as they were before the driver changed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ArpConf {
    arp_ignore: i32,
    arp_announce: i32,
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
    /// The ARP responders (one per interface with an agent-answered VIP).
    responders: Arc<Responders>,
    /// Interfaces whose kernel ARP answers are quiet for VIPs, with the settings to
    /// restore on exit (`None`: they were already quiet, nothing to restore).
    quiet: Arc<Mutex<BTreeMap<u32, Quieted>>>,
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
            responders: Arc::default(),
            quiet: Arc::default(),
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
        let loopback = links.iter().find(|link| link.loopback).map(|l| l.index);
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
        let holder = if link.mac.is_some() && !link.loopback {
            loopback.ok_or_else(|| VipError::NoLoopback { vip: vip.clone() })?
        } else {
            link.index
        };
        Ok(BoundVip {
            vip: vip.clone(),
            ifindex: link.index,
            interface: link.name,
            mac: link.mac,
            holder,
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
    /// An agent-answered VIP (see the module comment) goes on loopback as a /32 after
    /// its interface's kernel ARP answers are quiet, and is answered from then on.
    pub async fn acquire(&self, bound: &BoundVip, lifetime: Duration) -> Result<(), VipError> {
        let secs = lifetime_secs(lifetime);
        let vip = &bound.vip;
        if bound.answered_by_agent() && vip.address.is_ipv4() {
            self.quiet_kernel(bound).await?;
        }
        let prefix_len = match (bound.answered_by_agent(), vip.address) {
            (true, IpAddr::V4(_)) => 32,
            (true, IpAddr::V6(_)) => 128,
            (false, _) => vip.prefix_len,
        };
        let mut request = self
            .handle
            .address()
            .add(bound.holder, vip.address, prefix_len)
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
        if let Some(mac) = bound.answered_with() {
            self.responders
                .answer(bound.ifindex, &bound.interface, mac, vip.address)
                .map_err(|source| VipError::Responder {
                    vip: vip.clone(),
                    interface: bound.interface.clone(),
                    source,
                })?;
        }
        debug!(%vip, interface = %bound.interface, lifetime_s = secs, "VIP held");
        Ok(())
    }

    /// Whether the agent answers ARP/NDP for the VIP on its interface now.
    pub fn answering(&self, bound: &BoundVip) -> bool {
        self.responders.answers(bound.ifindex, bound.vip.address)
    }

    /// Stops answering ARP/NDP for the VIP, then removes it from this node; Ok if it
    /// is not there.
    pub async fn release(&self, bound: &BoundVip) -> Result<(), VipError> {
        self.responders.silence(bound.vip.address);
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
            self.responders.silence(vip.address);
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

    /// Readies what a takeover of `bound` needs, so that it finds it done: the socket
    /// announcements leave through and, for an agent-answered VIP, the responder
    /// (answering nothing yet) and for IPv4 the interface's quiet ARP settings.
    pub async fn prepare(&self, bound: &BoundVip) -> Result<(), VipError> {
        self.packet_socket(bound.ifindex)
            .map(drop)
            .map_err(|source| VipError::Announce {
                vip: bound.vip.clone(),
                interface: bound.interface.clone(),
                source,
            })?;
        if let Some(mac) = bound.answered_with() {
            if bound.vip.address.is_ipv4() {
                self.quiet_kernel(bound).await?;
            }
            self.responders
                .prepare(bound.ifindex, &bound.interface, mac, bound.vip.address)
                .map_err(|source| VipError::Responder {
                    vip: bound.vip.clone(),
                    interface: bound.interface.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Makes the kernel stop answering ARP on `bound`'s interface for addresses that
    /// are not on it (the VIPs on loopback), once per interface: raises `arp_ignore`
    /// to 1 and `arp_announce` to 2 where they are lower, remembering what they were.
    async fn quiet_kernel(&self, bound: &BoundVip) -> Result<(), VipError> {
        let ifindex = bound.ifindex;
        if lock(&self.quiet).contains_key(&ifindex) {
            return Ok(());
        }
        let before = self.arp_conf(ifindex, &bound.interface).await?;
        let changed =
            before.arp_ignore < QUIET_ARP_IGNORE || before.arp_announce < QUIET_ARP_ANNOUNCE;
        if changed {
            let quiet = ArpConf {
                arp_ignore: before.arp_ignore.max(QUIET_ARP_IGNORE),
                arp_announce: before.arp_announce.max(QUIET_ARP_ANNOUNCE),
            };
            self.set_arp_conf(ifindex, &bound.interface, quiet).await?;
            info!(
                interface = %bound.interface,
                arp_ignore = quiet.arp_ignore,
                arp_announce = quiet.arp_announce,
                was_arp_ignore = before.arp_ignore,
                was_arp_announce = before.arp_announce,
                "kernel ARP answers for VIPs turned off on the interface; the agent answers for them"
            );
        }
        lock(&self.quiet).insert(
            ifindex,
            (bound.interface.clone(), changed.then_some(before)),
        );
        Ok(())
    }

    /// Puts back the ARP settings [`VipDriver::acquire`]/[`VipDriver::prepare`]
    /// changed, on every interface, and returns how many it restored. Call on a
    /// graceful exit, after every VIP is released.
    pub async fn restore_kernel(&self) -> Result<usize, VipError> {
        let changed: Vec<(u32, String, ArpConf)> = std::mem::take(&mut *lock(&self.quiet))
            .into_iter()
            .filter_map(|(index, (name, before))| Some((index, name, before?)))
            .collect();
        let mut restored = 0;
        let mut failure = None;
        for (index, interface, before) in changed {
            match self.set_arp_conf(index, &interface, before).await {
                Ok(()) => {
                    info!(%interface, arp_ignore = before.arp_ignore, arp_announce = before.arp_announce, "ARP settings of the interface restored");
                    restored += 1;
                }
                Err(error) => {
                    warn!(%interface, "cannot restore the interface's ARP settings");
                    failure = Some(error);
                }
            }
        }
        failure.map_or(Ok(restored), Err)
    }

    async fn arp_conf(&self, ifindex: u32, interface: &str) -> Result<ArpConf, VipError> {
        let failed = |source| VipError::KernelArp {
            op: "read",
            interface: interface.to_owned(),
            source: Box::new(source),
        };
        let message = self
            .handle
            .link()
            .get()
            .match_index(ifindex)
            .execute()
            .try_next()
            .await
            .map_err(failed)?;
        message
            .as_ref()
            .and_then(inet_arp_conf)
            .ok_or_else(|| VipError::NoInetConf {
                interface: interface.to_owned(),
            })
    }

    async fn set_arp_conf(
        &self,
        ifindex: u32,
        interface: &str,
        conf: ArpConf,
    ) -> Result<(), VipError> {
        let mut message = LinkMessage::default();
        message.header.index = ifindex;
        message.attributes.push(inet_conf_attribute(&[
            (DEVCONF_ARP_IGNORE, conf.arp_ignore),
            (DEVCONF_ARP_ANNOUNCE, conf.arp_announce),
        ]));
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|source| VipError::KernelArp {
                op: "write",
                interface: interface.to_owned(),
                source: Box::new(source),
            })
    }

    fn packet_socket(&self, ifindex: u32) -> io::Result<Arc<PacketSocket>> {
        let mut sockets = lock(&self.sockets);
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
                    .is_some_and(|a| a.index == bound.holder && a.address == bound.vip.address)
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while holding it; every
    // update of these maps is a single insert or take, so they stay valid.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `IFLA_AF_SPEC` { `AF_INET` { `IFLA_INET_CONF` { (devconf id, value)… } } }: the
/// request that sets those IPv4 per-interface settings (the kernel's
/// `inet_set_link_af`), and only those, unlike a whole `InetDevConf`.
fn inet_conf_attribute(values: &[(u16, i32)]) -> LinkAttribute {
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![AfSpecInet::Other(
        DefaultNla::new(IFLA_INET_CONF | NLA_F_NESTED, inet_conf_payload(values)),
    )])])
}

/// The nested attributes of `IFLA_INET_CONF`: 4-byte header (length, id) and a u32
/// value each, in host byte order as netlink is.
fn inet_conf_payload(values: &[(u16, i32)]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(values.len() * 8);
    for &(id, value) in values {
        payload.extend_from_slice(&8u16.to_ne_bytes());
        payload.extend_from_slice(&id.to_ne_bytes());
        payload.extend_from_slice(&value.to_ne_bytes());
    }
    payload
}

/// `arp_ignore` and `arp_announce` of an interface, from its link message.
fn inet_arp_conf(message: &LinkMessage) -> Option<ArpConf> {
    message.attributes.iter().find_map(|attribute| {
        let LinkAttribute::AfSpecUnspec(specs) = attribute else {
            return None;
        };
        specs.iter().find_map(|spec| {
            let AfSpecUnspec::Inet(inet) = spec else {
                return None;
            };
            inet.iter().find_map(|entry| match entry {
                AfSpecInet::DevConf(conf) => Some(ArpConf {
                    arp_ignore: conf.arp_ignore,
                    arp_announce: conf.arp_announce,
                }),
                _ => None,
            })
        })
    })
}

/// An interface of this node, as far as the driver cares.
struct Link {
    index: u32,
    name: String,
    mac: Option<Mac>,
    loopback: bool,
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
            loopback: message.header.flags.contains(LinkFlags::Loopback),
        })
    }
}

/// An address on an interface with its prefix, i.e. the subnet it puts on that link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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
    fn inet_conf_request_carries_only_the_given_settings() {
        let payload = inet_conf_payload(&[(DEVCONF_ARP_IGNORE, 1), (DEVCONF_ARP_ANNOUNCE, 2)]);
        let mut expected = Vec::new();
        for (id, value) in [(19u16, 1u32), (18, 2)] {
            expected.extend_from_slice(&8u16.to_ne_bytes());
            expected.extend_from_slice(&id.to_ne_bytes());
            expected.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(payload, expected);
        // Zero is a value to write (a restore), not an absent one.
        assert_eq!(inet_conf_payload(&[(DEVCONF_ARP_IGNORE, 0)]).len(), 8);
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
