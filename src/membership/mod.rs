//! Membership: who is alive, who is connected, who is confirmed dead, and whether
//! this node is quorate — from authenticated UDP heartbeats (DESIGN.md section 4).
//!
//! A sans-IO state machine: it is fed datagrams with the local monotonic time they
//! arrived at and asked to produce the next heartbeat; it never touches a socket or a
//! clock. It never panics on input: every datagram that fails a check is dropped and
//! counted by reason.

pub mod auth;
pub mod push;
pub mod wire;
pub mod witness;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub use auth::{AuthError, Keyring, MIN_KEY_LEN};
pub use wire::{
    Claim, ClaimState, DropReason, EncodeError, Grant, GroupFailovers, Heartbeat, PeerReport,
    Unable,
};

use crate::placement::{ClusterModel, QuorumMode};

/// How many of our own send times are remembered to compute leases from echoed
/// sequence numbers. At 5 ms intervals this covers far more than any `deadAfter`.
const SENT_LOG: usize = 4096;

/// What this node knows of one peer.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The peer's last accepted heartbeat.
    pub last: Heartbeat,
    /// Local time that heartbeat arrived.
    pub heard_at: Duration,
    /// Start of the current alive period (reset when the peer was dead or restarted).
    pub alive_since: Duration,
    /// Per heartbeat link (the index of the socket it arrived on): the newest
    /// heartbeat that link carried and when.
    pub links: BTreeMap<usize, LinkSeen>,
}

/// The newest heartbeat of a peer that one link carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSeen {
    /// Its (incarnation, sequence number): a copy no newer than this on the same
    /// link is a replay.
    pub newest: (u64, u64),
    /// Local time it arrived.
    pub heard_at: Duration,
}

/// What one link to a live peer shows (see [`Membership::link_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// The link carried a heartbeat of the peer within `deadAfter`.
    Up,
    /// The peer has been alive for at least `deadAfter` over other links, and this
    /// one carried none of its heartbeats in that time.
    Down,
    /// The peer is not alive, or came alive less than `deadAfter` ago and this link
    /// has not carried a heartbeat yet: nothing to say about the link itself.
    Unknown,
}

/// A datagram [`Membership::receive`] took.
#[derive(Debug)]
pub enum Received<'a> {
    /// A heartbeat newer than any before from its sender: the peer's state.
    Fresh(&'a Heartbeat),
    /// A heartbeat that already arrived over another link (every heartbeat goes out
    /// on every link): it only shows that this link works.
    Duplicate,
}

/// Counters of heartbeat traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    pub dropped: BTreeMap<DropReason, u64>,
}

/// The membership state machine of one node.
#[derive(Debug)]
pub struct Membership {
    me: String,
    cluster: String,
    voters: Vec<String>,
    quorum: QuorumMode,
    dead_after: Duration,
    config_hash: u64,
    keys: Keyring,
    incarnation: u64,
    seq: u64,
    sent: VecDeque<(u64, Duration)>,
    peers: BTreeMap<String, Peer>,
    leaving: bool,
    counters: Counters,
}

impl Membership {
    /// A node `me` of `model`, started with `incarnation` (must exceed every earlier
    /// incarnation of this node: the start time in microseconds is a good choice).
    pub fn new(
        me: &str,
        model: &ClusterModel,
        config_hash: u64,
        keys: Keyring,
        incarnation: u64,
    ) -> Self {
        let mut m = Membership {
            me: me.to_string(),
            cluster: String::new(),
            voters: Vec::new(),
            quorum: model.quorum,
            dead_after: model.dead_after,
            config_hash,
            keys,
            incarnation,
            seq: 0,
            sent: VecDeque::new(),
            peers: BTreeMap::new(),
            leaving: false,
            counters: Counters::default(),
        };
        m.reconfigure(model, config_hash);
        m
    }

    /// Applies a new configuration; peers that stay members keep their state.
    pub fn reconfigure(&mut self, model: &ClusterModel, config_hash: u64) {
        self.cluster = model.cluster.clone();
        self.voters = model.members.iter().map(|m| m.name.clone()).collect();
        self.quorum = model.quorum;
        self.dead_after = model.dead_after;
        self.config_hash = config_hash;
        let voters = &self.voters;
        self.peers.retain(|name, _| voters.contains(name));
    }

    /// Replaces the keys (rotation).
    pub fn set_keys(&mut self, keys: Keyring) {
        self.keys = keys;
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The keys this node signs with and accepts (the witness requests use them too).
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// The hash of the configuration this node runs (sent in every heartbeat).
    pub fn config_hash(&self) -> u64 {
        self.config_hash
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn leaving(&self) -> bool {
        self.leaving
    }

    /// Announce a graceful exit in every following heartbeat.
    pub fn set_leaving(&mut self) {
        self.leaving = true;
    }

    /// The last accepted state of `node`.
    pub fn peer(&self, node: &str) -> Option<&Peer> {
        self.peers.get(node)
    }

    /// Every peer with state.
    pub fn peers(&self) -> impl Iterator<Item = (&str, &Peer)> {
        self.peers.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The voting members, this node included.
    pub fn voters(&self) -> &[String] {
        &self.voters
    }

    /// Accepts a datagram that arrived at `now` over heartbeat link `link`, or says
    /// why it was dropped. Only a [`Received::Fresh`] heartbeat counts as received;
    /// a [`Received::Duplicate`] (its copy over another link came first) is neither
    /// received nor dropped.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        link: usize,
        now: Duration,
    ) -> Result<Received<'_>, DropReason> {
        match self.accept(bytes, link, now) {
            Ok(Some(sender)) => {
                self.counters.received += 1;
                match self.peers.get(&sender) {
                    Some(peer) => Ok(Received::Fresh(&peer.last)),
                    None => unreachable!("accept stored the peer it returned"),
                }
            }
            Ok(None) => Ok(Received::Duplicate),
            Err(reason) => {
                *self.counters.dropped.entry(reason).or_default() += 1;
                Err(reason)
            }
        }
    }

    /// The sender of a fresh heartbeat, `None` for a duplicate of one.
    fn accept(
        &mut self,
        bytes: &[u8],
        link: usize,
        now: Duration,
    ) -> Result<Option<String>, DropReason> {
        let hb = Heartbeat::decode(bytes, &self.cluster, &self.keys)?;
        if hb.sender == self.me {
            return Err(DropReason::FromSelf);
        }
        if !self.voters.contains(&hb.sender) {
            return Err(DropReason::UnknownSender);
        }
        let alive_before = self.alive(&hb.sender, now);
        let id = (hb.incarnation, hb.seq);
        let seen = LinkSeen {
            newest: id,
            heard_at: now,
        };
        let (alive_since, links) = match self.peers.get_mut(&hb.sender) {
            Some(p) => {
                if id <= (p.last.incarnation, p.last.seq) {
                    // Not newer than the peer's state. Newer than what this link
                    // carried, it is the copy of a heartbeat another link brought
                    // first; otherwise a replay (or reordering) on this link.
                    let newer_on_link = p.links.get(&link).is_none_or(|l| id > l.newest);
                    if !newer_on_link {
                        return Err(DropReason::Replayed);
                    }
                    p.links.insert(link, seen);
                    return Ok(None);
                }
                let since = if alive_before && hb.incarnation == p.last.incarnation {
                    p.alive_since
                } else {
                    now
                };
                (since, std::mem::take(&mut p.links))
            }
            None => (now, BTreeMap::new()),
        };
        let mut links = links;
        links.insert(link, seen);
        let sender = hb.sender.clone();
        self.peers.insert(
            sender.clone(),
            Peer {
                last: hb,
                heard_at: now,
                alive_since,
                links,
            },
        );
        Ok(Some(sender))
    }

    /// What heartbeat link `link` shows of `node` at `now`: [`LinkState::Up`] while
    /// it carried one of its heartbeats within `deadAfter`; [`LinkState::Down`]
    /// when it carried none in that time although the peer has been alive (over
    /// other links) for at least as long.
    pub fn link_state(&self, node: &str, link: usize, now: Duration) -> LinkState {
        let Some(peer) = self.peers.get(node) else {
            return LinkState::Unknown;
        };
        let heard = peer.links.get(&link).map(|l| l.heard_at);
        if heard.is_some_and(|t| t <= now && now - t < self.dead_after) {
            LinkState::Up
        } else if self.alive(node, now) && now.saturating_sub(peer.alive_since) >= self.dead_after {
            LinkState::Down
        } else {
            LinkState::Unknown
        }
    }

    /// A valid heartbeat of `node` arrived within `deadAfter`. This node is always
    /// alive to itself.
    pub fn alive(&self, node: &str, now: Duration) -> bool {
        node == self.me
            || self.peers.get(node).is_some_and(|p| {
                now.saturating_sub(p.heard_at) < self.dead_after && p.heard_at <= now
            })
    }

    /// When `node` stops being alive unless another heartbeat arrives.
    pub fn alive_until(&self, node: &str) -> Option<Duration> {
        self.peers.get(node).map(|p| p.heard_at + self.dead_after)
    }

    /// Alive, and its last heartbeat shows it hears this node (this incarnation).
    pub fn connected(&self, node: &str, now: Duration) -> bool {
        if node == self.me {
            return true;
        }
        self.alive(node, now)
            && self.peers.get(node).is_some_and(|p| {
                p.last
                    .peers
                    .iter()
                    .any(|r| r.node == self.me && r.alive && r.incarnation == self.incarnation)
            })
    }

    /// A majority of the voters this node hears (itself included) report `node` not
    /// alive. This node's own report counts; so does the silence of `node` itself
    /// being heard by nobody.
    pub fn confirmed_dead(&self, node: &str, now: Duration) -> bool {
        let reports_dead = self
            .voters
            .iter()
            .filter(|v| v.as_str() != node)
            .filter(|v| {
                if v.as_str() == self.me {
                    !self.alive(node, now)
                } else if self.alive(v, now) {
                    self.peers
                        .get(v.as_str())
                        .is_some_and(|p| !p.last.peers.iter().any(|r| r.node == node && r.alive))
                } else {
                    false
                }
            })
            .count();
        reports_dead > self.voters.len() / 2
    }

    /// Connected voters, this node included.
    pub fn connected_voters(&self, now: Duration) -> usize {
        self.voters
            .iter()
            .filter(|v| self.connected(v, now))
            .count()
    }

    /// Quorate: connected to a majority of voters; in witness mode the witness lease
    /// is the tie-breaking vote; with quorum `none` always.
    pub fn quorate(&self, now: Duration, witness_held: bool) -> bool {
        let votes = self.connected_voters(now);
        match self.quorum {
            QuorumMode::None => true,
            QuorumMode::Majority => votes > self.voters.len() / 2,
            QuorumMode::Witness => {
                votes + usize::from(witness_held) > self.voters.len().div_ceil(2)
            }
        }
    }

    /// In witness mode, whether this node needs the witness to be quorate.
    pub fn witness_needed(&self, now: Duration) -> bool {
        self.quorum == QuorumMode::Witness
            && self.connected_voters(now) <= self.voters.len().div_ceil(2)
    }

    /// The sequence number the next heartbeat will carry.
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Local time the heartbeat with `seq` (of this incarnation) was produced.
    pub fn sent_at(&self, seq: u64) -> Option<Duration> {
        let first = self.sent.front()?.0;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.sent.get(index).map(|&(_, t)| t)
    }

    /// Builds, signs and records the next heartbeat.
    pub fn heartbeat(
        &mut self,
        now: Duration,
        claims: Vec<Claim>,
        grants: Vec<Grant>,
        unable: Vec<Unable>,
        failovers: Vec<GroupFailovers>,
    ) -> Result<Vec<u8>, EncodeError> {
        let peers = self
            .peers
            .iter()
            .map(|(name, p)| PeerReport {
                node: name.clone(),
                incarnation: p.last.incarnation,
                last_seq: p.last.seq,
                alive: self.alive(name, now),
            })
            .collect();
        let hb = Heartbeat {
            cluster: self.cluster.clone(),
            sender: self.me.clone(),
            incarnation: self.incarnation,
            seq: self.seq + 1,
            config_hash: self.config_hash,
            leaving: self.leaving,
            peers,
            claims,
            grants,
            unable,
            failovers,
        };
        let bytes = hb.encode(&self.keys)?;
        self.seq += 1;
        if self.sent.len() == SENT_LOG {
            self.sent.pop_front();
        }
        self.sent.push_back((self.seq, now));
        self.counters.sent += 1;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests;
