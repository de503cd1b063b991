//! `failover witness`: the tie-breaking vote of a standalone two-node cluster (the
//! triad's tertiary, corosync's qdevice). It votes, holds nothing, and
//! authenticates like a member (`membership::witness` framing, cluster keyring).
//!
//! This module owns the decision, sans-IO: per cluster one holder with an expiry
//! in the witness's monotonic time; a request of node N for duration D is granted
//! when the vote is free, held by N or expired, else refused with the time left —
//! the rules of the Kubernetes witness Lease (`agent::kube::lease::claim_witness`).
//! It also refuses stale requests (an incarnation or sequence of the node not newer
//! than the last one accepted), so a recorded request cannot renew a dead node's
//! hold. [`server`] is the IO shell around it. The decision must never read a
//! clock, a socket or a file: it is handed the time.
//!
//! # A restart forgets the holder: the restart hold
//!
//! The witness keeps its state in memory only. After a (re)start it grants nothing
//! until the longest duration any request names has passed since its start: a hold
//! it may have granted just before the restart has run out by then, whoever it
//! went to. We chose this over persisting the holder because a persisted expiry
//! would be in a monotonic clock that does not survive a reboot (wall time can step)
//! and a write per renewal would put the disk on the vote's path; the cost is that
//! for one hold duration after a witness restart no partition can win the
//! witness, which only matters if the members lose each other in that window.

pub mod server;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::membership::DropReason;

/// The longest hold granted. Agents ask for `deadAfter` rounded up to whole
/// seconds; a request for more (or for nothing) is malformed, so that no request
/// can make the restart hold or an expiry absurd.
pub const MAX_HOLD: Duration = Duration::from_secs(3600);

/// Who holds the vote, until when (witness time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub node: String,
    pub until: Duration,
}

/// What the witness answers one fresh request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Granted to the requester for the duration it asked, from now.
    Granted {
        /// The holder before (None: free or expired; the requester itself: a renewal).
        previous: Option<String>,
    },
    /// Another node holds the vote for `left` more.
    Held { holder: String, left: Duration },
    /// Within the restart hold: nothing is granted for `left` more.
    Restarting { left: Duration },
}

/// The witness of one cluster.
#[derive(Debug, Default)]
pub struct Witness {
    hold: Option<Hold>,
    /// The longest duration a request named since the start: until that much time
    /// has passed since the start, nothing is granted (module doc).
    longest: Duration,
    /// Per node: the (incarnation, sequence) of its last accepted request.
    last: BTreeMap<String, (u64, u64)>,
}

impl Witness {
    /// A witness that started at time zero of the clock it is handed.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current holder, if its hold has not run out at `now`.
    pub fn holder(&self, now: Duration) -> Option<&Hold> {
        self.hold.as_ref().filter(|h| now < h.until)
    }

    /// Decides a request of `node` (`incarnation`, `seq`) for `duration` at `now`
    /// (time since the witness started). A request not newer than the node's last
    /// accepted one is [`DropReason::Replayed`], one for no time or more than
    /// [`MAX_HOLD`] [`DropReason::Malformed`]; neither changes anything.
    pub fn request(
        &mut self,
        now: Duration,
        node: &str,
        incarnation: u64,
        seq: u64,
        duration: Duration,
    ) -> Result<Decision, DropReason> {
        if duration.is_zero() || duration > MAX_HOLD {
            return Err(DropReason::Malformed);
        }
        if self
            .last
            .get(node)
            .is_some_and(|&last| (incarnation, seq) <= last)
        {
            return Err(DropReason::Replayed);
        }
        self.last.insert(node.to_owned(), (incarnation, seq));
        self.longest = self.longest.max(duration);
        if now < self.longest {
            return Ok(Decision::Restarting {
                left: self.longest - now,
            });
        }
        if let Some(hold) = self.holder(now).filter(|h| h.node != node) {
            return Ok(Decision::Held {
                holder: hold.node.clone(),
                left: hold.until - now,
            });
        }
        let previous = self.holder(now).map(|h| h.node.clone());
        self.hold = Some(Hold {
            node: node.to_owned(),
            until: now + duration,
        });
        Ok(Decision::Granted { previous })
    }
}
