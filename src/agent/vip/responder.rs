//! The ARP responder: the agent, not the kernel, answers ARP requests for the IPv4
//! VIPs this node holds, one task per interface, from a packet socket.
//!
//! Why: a VIP's address outlives a killed agent by up to its lifetime, and a live
//! kernel answers ARP for every local address, so a crashed owner's node and its
//! successor would both answer for the VIP until the lifetime ran out (two MACs,
//! clients flipping between them). With the kernel told not to answer for the VIP
//! (the driver puts it on loopback and sets `arp_ignore` on the interface, see
//! `mod.rs`), the answers come only from this task, and they stop the instant the
//! agent dies — the way MetalLB's speaker answers ARP.
//!
//! Owns: the answering tasks and the set of addresses each answers for. Must never:
//! answer for an address the driver did not hand it (`answer`), go on answering
//! after `silence`, or answer a gratuitous ARP (an announcement, not a question).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::packet::{self, ETHERTYPE_ARP, Mac};
use super::socket::Capture;

/// Pause after a receive error, so a persistent one cannot spin the task.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

type Answered = Arc<Mutex<BTreeSet<Ipv4Addr>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked while holding it; the set and the
    // map stay consistent (every update is a single insert or remove).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One interface's answering task and what it answers for.
#[derive(Debug)]
struct Responder {
    answered: Answered,
    task: JoinHandle<()>,
}

/// The responders of every interface that has (or had) a VIP. Dropping the last
/// reference stops every task.
#[derive(Debug, Default)]
pub(super) struct Responders {
    by_link: Mutex<BTreeMap<u32, Responder>>,
}

impl Responders {
    /// Starts (once) the responder of `ifindex`, answering nothing yet. Binding a
    /// packet socket waits for an RCU grace period (~10 ms), so the driver calls this
    /// ahead of a takeover. Needs CAP_NET_RAW and a tokio runtime.
    pub(super) fn prepare(&self, ifindex: u32, interface: &str, mac: Mac) -> io::Result<()> {
        let mut by_link = lock(&self.by_link);
        if by_link.contains_key(&ifindex) {
            return Ok(());
        }
        let socket = Capture::bind(ifindex, ETHERTYPE_ARP)?;
        let answered = Answered::default();
        let task = tokio::spawn(serve(socket, mac, answered.clone(), interface.to_owned()));
        by_link.insert(ifindex, Responder { answered, task });
        Ok(())
    }

    /// Answers ARP for `vip` on `ifindex` from now on (starting the responder if
    /// `prepare` was not called).
    pub(super) fn answer(
        &self,
        ifindex: u32,
        interface: &str,
        mac: Mac,
        vip: Ipv4Addr,
    ) -> io::Result<()> {
        self.prepare(ifindex, interface, mac)?;
        if let Some(responder) = lock(&self.by_link).get(&ifindex) {
            lock(&responder.answered).insert(vip);
        }
        Ok(())
    }

    /// Stops answering for `vip` on every interface; returns at once, and no reply
    /// for it leaves after that (the task checks the set for every request).
    pub(super) fn silence(&self, vip: Ipv4Addr) {
        for responder in lock(&self.by_link).values() {
            lock(&responder.answered).remove(&vip);
        }
    }

    /// Whether `vip` is answered on `ifindex` now.
    pub(super) fn answers(&self, ifindex: u32, vip: Ipv4Addr) -> bool {
        lock(&self.by_link)
            .get(&ifindex)
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

/// Answers every ARP question for an address in `answered` arriving on the socket's
/// interface, until aborted.
async fn serve(socket: Capture, mac: Mac, answered: Answered, interface: String) {
    let mut failing = false;
    loop {
        let frame = match socket.next_frame().await {
            Ok(frame) => frame,
            Err(error) => {
                if !failing {
                    warn!(%interface, %error, "ARP responder cannot receive (logged once until it works again)");
                    failing = true;
                }
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let Some(request) = packet::parse_arp_request(&frame) else {
            continue;
        };
        // Our own frames come back on the socket too; a question from this node about
        // its own VIP is not one to answer on the wire.
        if request.sender_mac == mac || !lock(&answered).contains(&request.target_ip) {
            continue;
        }
        match socket.send(&packet::arp_reply(mac, request.target_ip, &request)) {
            Ok(()) => {
                if failing {
                    debug!(%interface, "ARP responder works again");
                    failing = false;
                }
            }
            Err(error) => {
                if !failing {
                    warn!(%interface, vip = %request.target_ip, %error, "cannot send ARP reply (logged once until it works again)");
                    failing = true;
                }
            }
        }
    }
}
