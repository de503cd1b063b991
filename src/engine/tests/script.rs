//! One engine under test, its peers scripted, in the style of raft-rs's unit tests:
//! the test writes each peer heartbeat the engine receives (what the peer claims,
//! whom it votes for, which of the engine's heartbeats it echoes), and reads the
//! engine's own heartbeats decoded (its claims and votes) besides its other outputs.
//! Time moves only when a test moves it.

use std::collections::BTreeMap;

use crate::engine::*;
use crate::membership::{Claim, ClaimState, Grant, Heartbeat, Keyring, PeerReport};
use crate::placement::{FailbackPolicy, GroupModel, MemberModel};

pub(super) const INTERVAL: Duration = Duration::from_millis(200);
pub(super) const DEAD_AFTER: Duration = Duration::from_secs(1);
/// The group every scripted cluster has.
pub(super) const GROUP: &str = "web";

/// Members `n1`, `n2`, … with falling priority (so the group's order is theirs),
/// one group that never fails back.
pub(super) fn cluster(members: usize, quorum: QuorumMode) -> ClusterModel {
    ClusterModel {
        cluster: "test/scripted".into(),
        members: (1..=members)
            .map(|i| MemberModel {
                name: format!("n{i}"),
                priority: 200 - i as u8,
                paused: false,
            })
            .collect(),
        quorum,
        interval: INTERVAL,
        dead_after: DEAD_AFTER,
        quarantine: None,
        groups: vec![GroupModel {
            name: GROUP.into(),
            preferred_owners: Vec::new(),
            failback: FailbackPolicy::Never,
            failover_limit: None,
            owner: None,
        }],
    }
}

fn keys() -> Keyring {
    Keyring::new(b"scripted engine tests, 32 bytes!".to_vec(), None)
        .unwrap_or_else(|_| Keyring::insecure_public())
}

pub(super) struct Script {
    pub engine: Engine,
    pub now: Duration,
    cluster: String,
    keys: Keyring,
    /// Every heartbeat the engine sent, decoded, with the local time it came out.
    pub sent: Vec<(Duration, Heartbeat)>,
    /// Every other output, with the local time it came out.
    pub log: Vec<(Duration, Output)>,
    /// Per peer, its last scripted heartbeat.
    peers: BTreeMap<String, Heartbeat>,
}

impl Script {
    /// Node `me` of `model` with incarnation `incarnation`, booted at time zero and
    /// not yet run: for `deadAfter` it gives no vote (see [`Script::started`]).
    pub fn booted(me: &str, model: ClusterModel, incarnation: u64) -> Self {
        let model = Arc::new(model);
        let config = EngineConfig::for_model(&model);
        let engine = Engine::new(
            me,
            model.clone(),
            1,
            (model.quorum == QuorumMode::Witness).then_some(WitnessRef::Lease),
            config,
            keys(),
            incarnation,
            Duration::ZERO,
            Timestamp::UNIX_EPOCH,
        );
        Script {
            engine,
            now: Duration::ZERO,
            cluster: model.cluster.clone(),
            keys: keys(),
            sent: Vec::new(),
            log: Vec::new(),
            peers: BTreeMap::new(),
        }
    }

    /// Node `me` (incarnation 1) of `model`, `deadAfter` after its boot: past the
    /// abstention of a fresh incarnation, it votes, and it has sent one heartbeat.
    pub fn started(me: &str, model: ClusterModel) -> Self {
        let mut script = Script::booted(me, model, 1);
        script.now = DEAD_AFTER;
        script.tick();
        script
    }

    /// Feeds `input` at the current time; returns the outputs but the heartbeats,
    /// which go to `sent`.
    pub fn handle(&mut self, input: Input<'_>) -> Vec<Output> {
        self.engine.handle(self.now, input);
        let mut out = Vec::new();
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Broadcast(bytes) => {
                    match Heartbeat::decode(&bytes, &self.cluster, &self.keys) {
                        Ok(hb) => self.sent.push((self.now, hb)),
                        Err(reason) => panic!("the engine sent an undecodable heartbeat: {reason}"),
                    }
                }
                other => {
                    self.log.push((self.now, other.clone()));
                    out.push(other);
                }
            }
        }
        out
    }

    pub fn tick(&mut self) -> Vec<Output> {
        self.handle(Input::Tick)
    }

    /// Ticks at every wake-up the engine asks for up to `until` (at most 1,000), then
    /// at `until`; returns what came out.
    pub fn run_until(&mut self, until: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        for _ in 0..1_000 {
            let due = self.engine.poll_timeout();
            if due > until || due <= self.now {
                break;
            }
            self.now = due;
            out.extend(self.tick());
        }
        self.now = until;
        out.extend(self.tick());
        out
    }

    /// The last heartbeat the engine sent.
    pub fn last_sent(&self) -> &Heartbeat {
        match self.sent.last() {
            Some((_, hb)) => hb,
            None => panic!("the engine sent no heartbeat yet"),
        }
    }

    /// The local time the engine sent its heartbeat `seq`.
    pub fn sent_at(&self, seq: u64) -> Duration {
        match self.sent.iter().find(|(_, hb)| hb.seq == seq) {
            Some((t, _)) => *t,
            None => panic!("the engine sent no heartbeat {seq}"),
        }
    }

    /// The next heartbeat of `peer` (incarnation 1 unless it sent with another):
    /// it hears the engine and echoes the engine's last heartbeat; it claims and
    /// grants nothing until the test says so.
    pub fn from(&self, peer: &str) -> Heartbeat {
        let (incarnation, seq) = self
            .peers
            .get(peer)
            .map_or((1, 0), |hb| (hb.incarnation, hb.seq));
        let echo = self.sent.last().map(|(_, hb)| PeerReport {
            node: self.engine.me().to_string(),
            incarnation: self.engine.membership().incarnation(),
            last_seq: hb.seq,
            alive: true,
        });
        Heartbeat {
            cluster: self.cluster.clone(),
            sender: peer.to_string(),
            incarnation,
            seq: seq + 1,
            config_hash: 1,
            leaving: false,
            peers: echo.into_iter().collect(),
            claims: Vec::new(),
            grants: Vec::new(),
            unable: Vec::new(),
            failovers: Vec::new(),
        }
    }

    /// Delivers a peer's heartbeat to the engine now.
    pub fn deliver(&mut self, hb: Heartbeat) -> Vec<Output> {
        self.deliver_on(hb, 0)
    }

    /// Delivers a peer's heartbeat to the engine now, over heartbeat link `link`.
    pub fn deliver_on(&mut self, hb: Heartbeat, link: usize) -> Vec<Output> {
        let bytes = match hb.encode(&self.keys) {
            Ok(bytes) => bytes,
            Err(e) => panic!("cannot encode a scripted heartbeat: {e}"),
        };
        self.peers.insert(hb.sender.clone(), hb);
        self.handle(Input::Datagram {
            bytes: &bytes,
            link,
        })
    }

    /// The sequence of the engine's heartbeat that `peer` echoed last.
    pub fn echoed_by(&self, peer: &str) -> u64 {
        let me = self.engine.me();
        self.peers
            .get(peer)
            .and_then(|hb| hb.peers.iter().find(|r| r.node == me))
            .map_or(0, |r| r.last_seq)
    }

    /// Delivers a plain heartbeat (no claim, no vote) of each of `peers`.
    pub fn hear(&mut self, peers: &[&str]) -> Vec<Output> {
        let mut out = Vec::new();
        for peer in peers {
            let hb = self.from(peer);
            out.extend(self.deliver(hb));
        }
        out
    }

    /// The engine's vote for the group in its last heartbeat: (holder, incarnation,
    /// epoch).
    pub fn vote(&self) -> Option<(String, u64, u64)> {
        self.last_sent()
            .grants
            .iter()
            .find(|g| g.group == GROUP)
            .map(|g| (g.holder.clone(), g.holder_incarnation, g.epoch))
    }

    /// The engine's claim of the group in its last heartbeat.
    pub fn claim(&self) -> Option<Claim> {
        self.last_sent()
            .claims
            .iter()
            .find(|c| c.group == GROUP)
            .cloned()
    }
}

/// A claim of the group that is not started yet, at `epoch`.
pub(super) fn claiming(epoch: u64) -> Claim {
    Claim {
        group: GROUP.into(),
        epoch,
        state: ClaimState::Claiming,
    }
}

/// A claim of the group the sender runs, at `epoch`.
pub(super) fn holding(epoch: u64) -> Claim {
    Claim {
        group: GROUP.into(),
        epoch,
        state: ClaimState::Holding,
    }
}

/// A vote for `holder` (incarnation `incarnation`) under `epoch`.
pub(super) fn grant(holder: &str, incarnation: u64, epoch: u64) -> Grant {
    Grant {
        group: GROUP.into(),
        holder: holder.into(),
        holder_incarnation: incarnation,
        epoch,
    }
}

/// The epochs of the group's starts among `outputs`.
pub(super) fn starts(outputs: &[Output]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Start { group, epoch, .. } if group == GROUP => Some(*epoch),
            _ => None,
        })
        .collect()
}

/// The causes of the group's stops among `outputs`.
pub(super) fn stops(outputs: &[Output]) -> Vec<StopCause> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Stop { group, cause } if group == GROUP => Some(*cause),
            _ => None,
        })
        .collect()
}
