//! Interface tracking: the groups this node cannot host because the interface of
//! one of their VIPs is administratively down, lost its carrier or vanished
//! (`InterfaceDown`), from the link table the VIP side keeps from netlink
//! notifications (`agent::vip::links`), so that an owner hands such a group over at
//! once and takes part again when the interface is back.
//!
//! [`assess`] is the pure decision; [`Interfaces`] keeps what it needs between
//! checks (the interface each VIP was last seen on), logs the changes and counts
//! them. Owns that memory. Must never decide where a group runs (the engine does
//! with what [`super::Resources::unable`] reports) and never touch a link.

use std::collections::BTreeMap;
use std::net::IpAddr;

use tracing::{info, warn};

use crate::agent::metrics::Metrics;
use crate::agent::vip::VirtualIp;
use crate::agent::vip::links::{LinkHealth, LinkTable, LinkWatch, LinkWatchError};

/// The interface that keeps a group from running here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    pub interface: String,
    pub health: LinkHealth,
}

/// What the links say about the configured VIPs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Every interface a configured VIP goes on, with its health.
    pub interfaces: BTreeMap<String, LinkHealth>,
    /// Per group: the interface of its first VIP (in resource order) that is not up.
    pub down: BTreeMap<String, Down>,
}

/// Assesses the VIPs of every group against `table`. A VIP goes on its named
/// interface, else on the interface whose subnet contains it, else on the one it
/// was last seen on (`remembered`, updated here): an IPv6 subnet leaves with its
/// interface going down, and a deleted interface takes its subnets along, yet the
/// VIP's interface is still the one that is down. A VIP whose interface was never
/// seen is not assessed here (its subnet is absent: another reason).
pub fn assess(
    vips: &BTreeMap<String, Vec<VirtualIp>>,
    table: &LinkTable,
    remembered: &mut BTreeMap<IpAddr, String>,
) -> Assessment {
    remembered.retain(|address, _| vips.values().flatten().any(|v| v.address == *address));
    let mut assessment = Assessment::default();
    for (group, group_vips) in vips {
        for vip in group_vips {
            let interface = match table.interface_of(vip) {
                Some(interface) => {
                    remembered.insert(vip.address, interface.clone());
                    interface
                }
                None => match remembered.get(&vip.address) {
                    Some(interface) => interface.clone(),
                    None => continue,
                },
            };
            let health = table.health(&interface);
            assessment.interfaces.insert(interface.clone(), health);
            if !health.is_up() && !assessment.down.contains_key(group) {
                assessment
                    .down
                    .insert(group.clone(), Down { interface, health });
            }
        }
    }
    assessment
}

/// The watched links, what the last check found, and what it remembers.
#[derive(Debug)]
pub struct Interfaces {
    links: LinkWatch,
    remembered: BTreeMap<IpAddr, String>,
    last: Assessment,
}

impl Interfaces {
    /// Starts watching the links of the calling thread's network namespace.
    pub async fn open() -> Result<Self, LinkWatchError> {
        Ok(Self {
            links: LinkWatch::open().await?,
            remembered: BTreeMap::new(),
            last: Assessment::default(),
        })
    }

    /// Resolves when a link or an address of this node changed since the last
    /// [`Interfaces::check`].
    pub async fn changed(&mut self) {
        self.links.changed().await;
    }

    /// The groups whose VIP interface was not up at the last check.
    pub fn down(&self) -> impl Iterator<Item = &str> {
        self.last.down.keys().map(String::as_str)
    }

    /// Assesses `vips` against the links as they are now; logs every group that
    /// became unable or able again, and updates the interface metrics.
    pub fn check(&mut self, vips: &BTreeMap<String, Vec<VirtualIp>>, metrics: &Metrics) {
        let now = assess(vips, &self.links.table(), &mut self.remembered);
        if now == self.last {
            return;
        }
        for (group, down) in &now.down {
            if self.last.down.get(group) != Some(down) {
                warn!(
                    group,
                    interface = %down.interface,
                    state = down.health.label(),
                    "the interface of the group's VIP is down: the group cannot run here (InterfaceDown); an owner hands it over"
                );
            }
        }
        for (group, was) in &self.last.down {
            if !now.down.contains_key(group) && vips.contains_key(group) {
                info!(
                    group,
                    interface = %was.interface,
                    "the interface of the group's VIP is up again: the group may run here again"
                );
            }
        }
        for (interface, &health) in &now.interfaces {
            let before = self.last.interfaces.get(interface);
            if before == Some(&LinkHealth::Up) && !health.is_up() {
                metrics.interface_went_down(interface);
            }
            metrics.interface_up(interface, health.is_up());
        }
        for interface in self.last.interfaces.keys() {
            if !now.interfaces.contains_key(interface) {
                metrics.forget_interface(interface);
            }
        }
        self.last = now;
    }
}

#[cfg(test)]
mod tests;
