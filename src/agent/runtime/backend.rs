//! What a mode (standalone or Kubernetes) plugs into the shared event loop and
//! what it gets out of it: the [`Update`]s it pushes in, the [`Backend`] the loop
//! calls, the [`Report`] of the node's state and the [`Notice`]s of transitions.
//!
//! Owns that interface. Must never let a mode block the loop: every backend method
//! returns at once, and answers come back as updates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::info;

use super::Agent;
use crate::agent::resources::Repair;
use crate::agent::timeline::Takeover;
use crate::contract::model::{AgentConfig, hash_text};
use crate::contract::report::{NodeReport, Owned, View};
use crate::engine::{Input, WitnessRef};
use crate::membership::{Keyring, LinkState};

/// What another task pushes into the event loop (the Kubernetes mode's watches and
/// what the group records say, the witness answers of both modes).
#[derive(Debug)]
pub enum Update {
    /// A new, validated configuration.
    Config(Box<AgentConfig>),
    /// The configuration was deleted (the cluster was deleted): every group goes
    /// offline until a configuration comes again.
    ConfigDeleted,
    /// New heartbeat keys (a rotation).
    Keys(Keyring),
    /// An input for the engine as it is: [`Input::Witness`] (times in the loop's
    /// local time), [`Input::Recorded`] or [`Input::Superseded`].
    Engine(Input<'static>),
}

/// A summary of the node's state for the outside world (the node Lease).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub config_hash: u64,
    pub quorate: bool,
    /// Members this node counts alive, itself included, sorted.
    pub alive: Vec<String>,
    /// Groups this node runs (VIPs up or coming up, not stopping).
    pub owned: BTreeMap<String, Owned>,
    /// Per group: why this node is or is not the owner.
    pub explain: BTreeMap<String, String>,
    /// Groups Failed in this node's view (failover limit reached), sorted.
    pub failed: Vec<String>,
    /// Per group with a failover limit: its failovers within the period.
    pub failovers: BTreeMap<String, u32>,
    /// Live peers that have run another configuration than this node for longer
    /// than the grace, with the hash each runs.
    pub config_mismatch: BTreeMap<String, u64>,
    /// A majority of the members runs another configuration than this node: it
    /// keeps the groups it runs and takes no other.
    pub config_outvoted: bool,
    /// Live peers whose heartbeat links (by index) are down while others carry
    /// their heartbeats.
    pub links_down: BTreeMap<String, Vec<usize>>,
    /// The last takeovers this node made of the configuration's groups, newest
    /// first, a few per group.
    pub takeovers: Vec<Takeover>,
}

impl Report {
    /// The report in the contract's JSON shapes: the node Lease's annotations and
    /// the agent's `/state` are both made of it.
    pub fn node_report(&self) -> NodeReport {
        NodeReport {
            config_hash: hash_text(self.config_hash),
            view: View {
                quorate: self.quorate,
                alive: self.alive.clone(),
                held: self
                    .owned
                    .iter()
                    .map(|(group, o)| (group.clone(), o.epoch))
                    .collect(),
                failed: self.failed.clone(),
                failovers: self.failovers.clone(),
                config_mismatch: self
                    .config_mismatch
                    .iter()
                    .map(|(peer, &hash)| (peer.clone(), hash_text(hash)))
                    .collect(),
                config_outvoted: self.config_outvoted,
                links_down: self.links_down.clone(),
            },
            owned: self.owned.clone(),
            explain: self.explain.clone(),
            takeovers: self.takeovers.iter().map(Takeover::report).collect(),
        }
    }
}

/// A person-visible transition the backend may publish (as a Kubernetes Event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// This node brought a group online (every resource online), with the
    /// takeover's timeline.
    Took {
        message: String,
        takeover: Takeover,
    },
    Fenced {
        group: String,
    },
    /// A running resource of a group failed here: restarted in place, or past its
    /// restart limit, so the group fails over.
    ResourceFailed(Repair),
    QuorumLost,
    QuorumGained,
}

/// What a mode adds to the shared event loop. Every method returns at once: work
/// that talks to a remote service is spawned, and its answer comes back as an
/// [`Update`].
pub trait Backend: Send {
    /// Acquire or renew the vote of the asked witness and answer with
    /// [`Input::Witness`] (naming that witness) in an [`Update::Engine`]; `false`:
    /// this mode has no such witness (the loop refuses).
    fn witness_request(&mut self, ask: WitnessAsk<'_>) -> bool;
    /// A transition a person cares about.
    fn notice(&mut self, notice: Notice);
    /// How often [`Backend::report`] wants a fresh [`Report`] besides the one sent
    /// at once after every change; `None`: never.
    fn report_every(&self) -> Option<Duration>;
    /// The node's state; `None` while the configuration is deleted (nothing to
    /// report, nothing to record).
    fn report(&mut self, report: Option<Report>);
}

/// What a witness request is about: the witness to ask (during a change of
/// witness the old and the new one are asked apart), the running configuration
/// (the hold's duration comes from it) and who asks, with the keys it signs with.
pub struct WitnessAsk<'a> {
    pub witness: WitnessRef,
    pub config: &'a AgentConfig,
    pub node: &'a str,
    /// This agent run's incarnation (as in its heartbeats).
    pub incarnation: u64,
    pub keys: &'a Keyring,
}

/// Everything the shared loop needs besides the first configuration.
pub struct LoopOptions {
    pub node: String,
    pub keys: Keyring,
    pub metrics_addr: Option<SocketAddr>,
    /// Where the first configuration came from, for errors.
    pub origin: String,
    /// The origin of the loop's local monotonic time (the backend computes witness
    /// times against it).
    pub start: Instant,
    /// Updates pushed by another task (Kubernetes watches, witness answers).
    pub updates: Option<mpsc::Receiver<Update>>,
    pub backend: Box<dyn Backend>,
    /// Standalone with a heartbeat key: take `failover config push` over TCP on
    /// this member's heartbeat addresses.
    pub accept_pushes: bool,
}

impl Agent {
    /// Applies one update pushed by the mode's tasks.
    pub(super) async fn update(&mut self, update: Update) {
        match update {
            Update::Config(config) => self.apply(*config).await,
            Update::ConfigDeleted => self.config_deleted().await,
            Update::Keys(keys) => {
                info!("heartbeat keys changed: using the new keys");
                self.engine.set_keys(keys);
            }
            Update::Engine(input) => {
                // A record may have raised the epoch of a group this node runs.
                self.report_due = true;
                self.step(input).await
            }
        }
    }

    /// The node's state for the node Lease.
    pub(super) fn report(&self) -> Report {
        let now = self.now();
        let model = self.engine.model();
        let membership = self.engine.membership();
        Report {
            config_hash: self.config.hash,
            quorate: self.engine.quorate(),
            alive: model
                .members
                .iter()
                .filter(|m| m.name == self.node || membership.alive(&m.name, now))
                .map(|m| m.name.clone())
                .collect(),
            owned: self
                .engine
                .held_groups()
                .filter_map(|(group, epoch)| {
                    let holding = self.owned.get(group)?;
                    let owned = Owned {
                        epoch,
                        reason: holding.reason,
                        message: holding.message.clone(),
                        since: Some(holding.since),
                        resources: self.resources.states(group),
                    };
                    Some((group.to_owned(), owned))
                })
                .collect(),
            explain: model
                .groups
                .iter()
                .filter_map(|g| {
                    let why = self.engine.explain(&g.name, &self.node, now)?;
                    Some((g.name.clone(), why))
                })
                .collect(),
            failed: self.engine.failed_groups().map(str::to_owned).collect(),
            failovers: self
                .engine
                .failover_counts(now)
                .map(|(group, n)| (group.to_owned(), u32::try_from(n).unwrap_or(u32::MAX)))
                .collect(),
            config_mismatch: self.engine.config_mismatch().clone(),
            config_outvoted: self.engine.config_outvoted(),
            links_down: self
                .links
                .iter()
                .filter(|(_, s)| **s == LinkState::Down)
                .fold(
                    BTreeMap::new(),
                    |mut down: BTreeMap<String, Vec<usize>>, ((peer, link), _)| {
                        down.entry(peer.clone()).or_default().push(*link);
                        down
                    },
                ),
            takeovers: self
                .timelines
                .recent(|group| model.groups.iter().any(|g| g.name == group)),
        }
    }
}
