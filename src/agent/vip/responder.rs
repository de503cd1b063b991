//! The ARP and NDP responder: the agent, not the kernel, answers ARP requests (IPv4)
//! and neighbour solicitations (IPv6) for the VIPs this node holds, one task per
//! interface and protocol, from a packet socket.
//!
//! Why: a VIP's address outlives a killed agent by up to its lifetime, and a live
//! kernel answers for every local address, so a crashed owner's node and its
//! successor would both answer for the VIP until the lifetime ran out (two MACs,
//! clients flipping between them). With the kernel told not to answer for the VIP
//! (the driver puts it on loopback, see `mod.rs`), the answers come only from these
//! tasks, and they stop the instant the agent dies — the way MetalLB's speaker
//! answers ARP and NDP.
//!
//! Owns: the answering tasks and the set of addresses each answers for. Must never:
//! answer for an address the driver did not hand it (`answer`), go on answering
//! after `silence`, or answer a gratuitous ARP (an announcement, not a question).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::packet::{self, ETHERTYPE_ARP, ETHERTYPE_IPV6, Mac};
use super::socket::Capture;

/// Pause after a receive error, so a persistent one cannot spin the task.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

type Answered = Arc<Mutex<BTreeSet<IpAddr>>>;

/// What a responder answers: ARP for IPv4, neighbour solicitations for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Protocol {
    Arp,
    Ndp,
}

impl Protocol {
    fn of(address: IpAddr) -> Self {
        if address.is_ipv4() {
            Protocol::Arp
        } else {
            Protocol::Ndp
        }
    }
}

/// The answer to `frame` if it asks (ARP request or neighbour solicitation) for an
/// address `answered` contains and does not come from this node's own `mac`.
fn answer(frame: &[u8], mac: Mac, answered: impl Fn(IpAddr) -> bool) -> Option<Vec<u8>> {
    if let Some(request) = packet::parse_arp_request(frame) {
        let vip = request.target_ip;
        return (request.sender_mac != mac && answered(vip.into()))
            .then(|| packet::arp_reply(mac, vip, &request));
    }
    let solicitation = packet::parse_neighbor_solicitation(frame)?;
    let vip = solicitation.target;
    (solicitation.sender_mac != mac && answered(vip.into()))
        .then(|| packet::solicited_na(mac, vip, &solicitation))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked while holding it; the set and the
    // map stay consistent (every update is a single insert or remove).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One interface's answering task for one protocol and what it answers for.
#[derive(Debug)]
struct Responder {
    answered: Answered,
    /// The socket, shared with the task (to join multicast groups for new VIPs).
    socket: Arc<Capture>,
    task: JoinHandle<()>,
}

/// The responders of every interface that has (or had) a VIP. Dropping the last
/// reference stops every task.
#[derive(Debug, Default)]
pub(super) struct Responders {
    by_link: Mutex<BTreeMap<(u32, Protocol), Responder>>,
}

impl Responders {
    /// Starts (once) the responder of `ifindex` for `address`'s protocol, answering
    /// nothing yet. Binding a packet socket waits for an RCU grace period (~10 ms),
    /// so the driver calls this ahead of a takeover. Needs CAP_NET_RAW and a tokio
    /// runtime.
    pub(super) fn prepare(
        &self,
        ifindex: u32,
        interface: &str,
        mac: Mac,
        address: IpAddr,
    ) -> io::Result<()> {
        let protocol = Protocol::of(address);
        let mut by_link = lock(&self.by_link);
        if by_link.contains_key(&(ifindex, protocol)) {
            return Ok(());
        }
        let socket = match protocol {
            Protocol::Arp => Capture::bind(ifindex, ETHERTYPE_ARP)?,
            Protocol::Ndp => {
                let socket = Capture::bind(ifindex, ETHERTYPE_IPV6)?;
                socket.only_neighbor_solicitations()?;
                socket
            }
        };
        let socket = Arc::new(socket);
        let answered = Answered::default();
        let task = tokio::spawn(serve(
            socket.clone(),
            mac,
            answered.clone(),
            interface.to_owned(),
        ));
        by_link.insert(
            (ifindex, protocol),
            Responder {
                answered,
                socket,
                task,
            },
        );
        Ok(())
    }

    /// Answers for `vip` on `ifindex` from now on (starting the responder if
    /// `prepare` was not called; for IPv6 also joining the VIP's solicited-node
    /// group, which the kernel does not join for an address on loopback).
    pub(super) fn answer(
        &self,
        ifindex: u32,
        interface: &str,
        mac: Mac,
        vip: IpAddr,
    ) -> io::Result<()> {
        self.prepare(ifindex, interface, mac, vip)?;
        let by_link = lock(&self.by_link);
        let Some(responder) = by_link.get(&(ifindex, Protocol::of(vip))) else {
            return Ok(());
        };
        let mut answered = lock(&responder.answered);
        if !answered.contains(&vip) {
            if let IpAddr::V6(v6) = vip {
                responder.socket.join(packet::solicited_node_mac(v6))?;
            }
            answered.insert(vip);
        }
        Ok(())
    }

    /// Stops answering for `vip` on every interface; returns at once, and no answer
    /// for it leaves after that (the task checks the set for every request).
    pub(super) fn silence(&self, vip: IpAddr) {
        for responder in lock(&self.by_link).values() {
            lock(&responder.answered).remove(&vip);
        }
    }

    /// Whether `vip` is answered on `ifindex` now.
    pub(super) fn answers(&self, ifindex: u32, vip: IpAddr) -> bool {
        lock(&self.by_link)
            .get(&(ifindex, Protocol::of(vip)))
            .is_some_and(|r| lock(&r.answered).contains(&vip))
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        for responder in lock(&self.by_link).values() {
            responder.task.abort();
        }
    }
}

/// Answers every question for an address in `answered` arriving on the socket's
/// interface, until aborted.
async fn serve(socket: Arc<Capture>, mac: Mac, answered: Answered, interface: String) {
    let mut failing = false;
    loop {
        let frame = match socket.next_frame().await {
            Ok(frame) => frame,
            Err(error) => {
                if !failing {
                    warn!(%interface, %error, "VIP responder cannot receive (logged once until it works again)");
                    failing = true;
                }
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        // Our own frames come back on the socket too (skipped by their MAC).
        let Some(reply) = answer(&frame, mac, |vip| lock(&answered).contains(&vip)) else {
            continue;
        };
        match socket.send(&reply) {
            Ok(()) => {
                if failing {
                    debug!(%interface, "VIP responder works again");
                    failing = false;
                }
            }
            Err(error) => {
                if !failing {
                    warn!(%interface, %error, "cannot send an ARP/NDP answer for a VIP (logged once until it works again)");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const MAC: Mac = [0x02, 0, 0x5e, 0x77, 0, 1];
    const ASKER: Mac = [0x02, 0, 0x5e, 0x77, 0, 2];

    fn arp_request(sender: Mac, target: Ipv4Addr) -> Vec<u8> {
        packet::arp_request(sender, Ipv4Addr::new(10, 77, 0, 7), target)
    }

    #[test]
    fn answers_only_questions_for_answered_addresses_from_others() {
        let vip4 = Ipv4Addr::new(10, 77, 0, 100);
        let vip6 = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100);
        let asker6 = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 7);
        let all = |_| true;
        let none = |_| false;
        let request = arp_request(ASKER, vip4);
        let parsed = packet::parse_arp_request(&request).unwrap();
        assert_eq!(
            answer(&request, MAC, all),
            Some(packet::arp_reply(MAC, vip4, &parsed))
        );
        assert_eq!(answer(&request, MAC, none), None);
        assert_eq!(answer(&arp_request(MAC, vip4), MAC, all), None, "our own");
        assert_eq!(answer(&packet::gratuitous_arp(ASKER, vip4), MAC, all), None);
        let ns = packet::neighbor_solicitation(ASKER, asker6, vip6);
        let parsed = packet::parse_neighbor_solicitation(&ns).unwrap();
        assert_eq!(
            answer(&ns, MAC, all),
            Some(packet::solicited_na(MAC, vip6, &parsed))
        );
        assert_eq!(answer(&ns, MAC, |a| a == IpAddr::V4(vip4)), None);
        assert_eq!(answer(&packet::unsolicited_na(ASKER, vip6), MAC, all), None);
    }
}
