//! Carrying out what the engine asks: each input is fed with the local monotonic
//! time, then every output is carried out in order (heartbeats sent, groups started
//! and stopped through the resources, witness requests passed to the backend,
//! events logged and counted, with the takeover timeline), and the inputs those
//! outputs lead to are fed back before the next input.
//!
//! Owns the order of that exchange. Must never reorder the engine's outputs nor
//! feed a followup before the outputs of the input that caused it are done.

use jiff::Timestamp;
use tracing::{debug, info, warn};

use super::backend::{Notice, WitnessAsk};
use super::{Agent, Holding};
use crate::agent::metrics::Phase;
use crate::agent::resources::hook::{self, Transition, TransitionKind};
use crate::agent::resources::{ResourceEvent, Started};
use crate::agent::timeline::{Origin, Takeover, millis};
use crate::api::conditions::event;
use crate::contract::model::hash_text;
use crate::contract::report::ResourceReason;
use crate::engine::{Event, Input, Output, StopCause};
use crate::membership::LinkState;
use crate::placement::{Reason, UnableReason};

impl Agent {
    /// Feeds one input, then carries out every output it leads to.
    pub(super) async fn step(&mut self, input: Input<'_>) {
        self.engine.handle(self.now(), input);
        loop {
            while let Some(output) = self.engine.poll_output() {
                self.output(output).await;
            }
            let Some(next) = self.followups.pop_front() else {
                break;
            };
            self.engine.handle(self.now(), next);
        }
        self.sync_counters();
        self.sync_links();
    }

    /// Shows what every link to every peer carried: the link metric, a log line when
    /// a link goes down or comes back while the peer stays alive over the others
    /// (a dead peer's links are the peer's story: "peer down"), and the report.
    /// Runs after a step at most every quarter interval: every datagram is a step,
    /// and comparing every link of every peer after each would cost more than
    /// the datagram. The engine steps at least every interval, and a live peer's
    /// datagrams arrive every interval, so a link shows down within `deadAfter`
    /// plus about one interval.
    fn sync_links(&mut self) {
        let now = self.now();
        if now < self.links_synced + self.config.model.interval / 4 {
            return;
        }
        self.links_synced = now;
        let membership = self.engine.membership();
        for (peer, links) in &self.config.addresses {
            if *peer == self.node {
                continue;
            }
            for (link, addr) in links.iter().enumerate().take(self.sockets.len()) {
                let state = membership.link_state(peer, link, now);
                let key = (peer.clone(), link);
                let before = self.links.get(&key).copied().unwrap_or(LinkState::Unknown);
                if state == before {
                    continue;
                }
                self.telemetry
                    .metrics
                    .link(peer, link, state == LinkState::Up);
                match (before, state) {
                    (_, LinkState::Down) => warn!(
                        peer = %peer,
                        link,
                        %addr,
                        "heartbeat link down: no heartbeat of the peer over it within deadAfter; the peer is alive over its other links"
                    ),
                    (LinkState::Down, LinkState::Up) => {
                        info!(peer = %peer, link, %addr, "heartbeat link up again")
                    }
                    _ => {}
                }
                if before == LinkState::Down || state == LinkState::Down {
                    self.report_due = true;
                }
                if state == LinkState::Unknown {
                    self.links.remove(&key);
                } else {
                    self.links.insert(key, state);
                }
            }
        }
    }

    fn sync_counters(&mut self) {
        let c = self.engine.membership().counters();
        let metrics = &self.telemetry.metrics;
        metrics.heartbeats(
            c.sent.saturating_sub(self.counters.sent),
            c.received.saturating_sub(self.counters.received),
        );
        for (&reason, &count) in &c.dropped {
            let before = self.counters.dropped.get(&reason).copied().unwrap_or(0);
            if count > before {
                metrics.dropped(reason, count - before);
            }
        }
        self.counters = c.clone();
    }

    async fn output(&mut self, output: Output) {
        match output {
            Output::Broadcast(bytes) => {
                // The same datagram on every link: the first copy to arrive counts,
                // the others only show that their link works.
                for (link, addr) in &self.peers {
                    // try_send_to: a full socket buffer must not stall the loop; the
                    // heartbeat is repeated next interval anyway.
                    match self.sockets[*link].try_send_to(&bytes, *addr) {
                        Ok(_) => {
                            if self.send_failing.remove(addr) {
                                info!(%addr, link, "heartbeat sends work again");
                            }
                        }
                        Err(error) => {
                            self.telemetry.metrics.send_error();
                            if self.send_failing.insert(*addr) {
                                warn!(%addr, link, %error, "heartbeat send failed (counted; logged once until it works again)");
                            }
                        }
                    }
                }
            }
            Output::Start {
                group,
                epoch,
                reason,
                message,
            } => {
                info!(group, epoch, reason = reason.code(), why = %message, "taking the group online");
                self.owned.insert(
                    group.clone(),
                    Holding {
                        reason,
                        message: message.clone(),
                        since: Timestamp::now(),
                        epoch,
                    },
                );
                self.report_due = true;
                self.start_group(group, reason, epoch, message).await;
            }
            Output::Renew { group } => self.resources.renew(&group, &self.config).await,
            Output::Stop { group, cause } => {
                let epoch = self.owned.remove(&group).map_or(0, |h| h.epoch);
                self.report_due = true;
                self.stop_group(group, cause, epoch).await
            }
            Output::WitnessRequest { witness } => {
                let membership = self.engine.membership();
                let ask = WitnessAsk {
                    witness,
                    config: &self.config,
                    node: &self.node,
                    incarnation: membership.incarnation(),
                    keys: membership.keys(),
                };
                if !self.backend.witness_request(ask) {
                    self.followups.push_back(Input::Witness {
                        witness,
                        held_until: None,
                        other_until: None,
                    });
                }
            }
            Output::Event(event) => self.event(event),
        }
    }

    fn event(&mut self, event: Event) {
        let now = self.now();
        let metrics = &self.telemetry.metrics;
        if matches!(
            event,
            Event::PeerUp { .. } | Event::PeerDown { .. } | Event::QuorumGained | Event::QuorumLost
        ) {
            // The report's view changed.
            self.report_due = true;
        }
        match event {
            Event::PeerUp { node } => {
                metrics.peer(&node, true);
                info!(peer = %node, "peer up");
            }
            Event::PeerDown { node, leaving } => {
                metrics.peer(&node, false);
                self.detected = Some(now);
                if leaving {
                    info!(peer = %node, "peer left");
                } else {
                    warn!(peer = %node, "peer down: no heartbeat within deadAfter");
                }
            }
            Event::QuorumGained => {
                self.backend.notice(Notice::QuorumGained);
                metrics.quorate(true);
                self.telemetry.set_ready(true);
                info!("quorum gained");
            }
            Event::QuorumLost => {
                self.backend.notice(Notice::QuorumLost);
                metrics.quorate(false);
                self.telemetry.set_ready(false);
                warn!("quorum lost");
            }
            Event::Dropped(reason) => debug!(reason = reason.label(), "heartbeat dropped"),
            Event::Claimed {
                group,
                reason,
                message,
            } => {
                // A claim within deadAfter of a detected failure is its takeover.
                let detected = self
                    .detected
                    .filter(|&at| now.saturating_sub(at) <= self.config.model.dead_after);
                self.timelines
                    .decided(&group, now, Timestamp::now(), detected);
                info!(group, reason = reason.code(), why = %message, "claiming the group");
            }
            Event::Won { group, epoch } => {
                self.timelines.reached(&group, Phase::Ledger, now);
                info!(group, epoch, "a majority voted for this node");
            }
            Event::Fenced { group } => {
                self.backend.notice(Notice::Fenced {
                    group: group.clone(),
                });
                warn!(
                    group,
                    "fencing: votes about to lapse (quorum lost or partitioned); stopping the group"
                );
            }
            Event::Released { group, reason } => {
                info!(group, reason = reason.code(), "handing the group over");
            }
            Event::ConfigMismatch { node, theirs, ours } => {
                warn!(
                    peer = %node,
                    peer_config_hash = %hash_text(theirs),
                    config_hash = %hash_text(ours),
                    "peer runs another configuration"
                );
                self.config_changed();
            }
            Event::ConfigMismatchEnded { node } => {
                info!(peer = %node, "peer no longer runs another configuration (same hash, or not heard)");
                self.config_changed();
            }
            Event::ConfigOutvoted { ours, majority } => {
                warn!(
                    config_hash = %hash_text(ours),
                    majority_config_hash = %hash_text(majority),
                    "a majority of the members runs another configuration: keeping the groups this node runs, taking no other"
                );
                self.config_changed();
            }
            Event::ConfigOutvotedEnded => {
                info!("this node's configuration is no longer outvoted: it takes groups again");
                self.config_changed();
            }
            Event::WitnessChangeBegan { needed } => {
                let needed: Vec<String> = needed.iter().map(ToString::to_string).collect();
                warn!(
                    ?needed,
                    "the witness changed: a witness vote needs every one of these until every member runs this configuration"
                );
                self.witness_changed();
            }
            Event::WitnessChangeDone { dropped } => {
                let dropped: Vec<String> = dropped.iter().map(ToString::to_string).collect();
                info!(
                    ?dropped,
                    "every member runs this configuration: the old witness no longer counts"
                );
                self.witness_changed();
            }
        }
    }

    /// A change of witness began or ended: the metric shows whether one lasts.
    fn witness_changed(&mut self) {
        self.telemetry
            .metrics
            .witness_changing(self.engine.witnesses().changing());
    }

    /// The configuration comparison changed: the metrics and the report show it.
    fn config_changed(&mut self) {
        self.telemetry.metrics.config_mismatch(
            self.engine.config_mismatch().len(),
            self.engine.config_outvoted(),
        );
        self.report_due = true;
    }

    /// Brings a group's resources online; if they cannot come online the group is
    /// unable here, so the engine stops it and placement moves it on. Once they
    /// are online, the takeover's timeline is finished and told.
    async fn start_group(&mut self, group: String, reason: Reason, epoch: u64, message: String) {
        match self.resources.start(&group, &self.config).await {
            Started::Online(vips) => {
                for (phase, at) in [(Phase::VipUp, vips.vip_up), (Phase::ArpSent, vips.arp_sent)] {
                    if let Some(at) = at {
                        self.timelines.reached(&group, phase, at);
                    }
                }
                let takeover =
                    self.timelines
                        .online(&group, reason, epoch, self.now(), Timestamp::now());
                self.timed(&takeover);
                self.backend.notice(Notice::Took { message, takeover });
                self.telemetry.metrics.failover(reason);
                self.telemetry.metrics.owned(&group, true);
                self.hook(&group, TransitionKind::BecameOwner, reason.code(), epoch);
                self.followups.push_back(Input::Online { group });
            }
            Started::Failed => {
                self.timelines.abandon(&group);
                self.hook(
                    &group,
                    TransitionKind::Failed,
                    UnableReason::ResourceFailed.code(),
                    epoch,
                );
                self.followups.push_back(Input::Unable {
                    groups: self.resources.unable(),
                });
            }
        }
    }

    /// Counts a finished takeover's phases (`failover_phase_seconds`, which times
    /// failovers from their detection: planned moves are not counted) and logs its
    /// timeline as one line, in both modes.
    fn timed(&self, takeover: &Takeover) {
        if takeover.origin == Origin::Detected {
            for &(phase, since) in &takeover.phases {
                self.telemetry.metrics.phase(phase, since.as_secs_f64());
            }
        }
        let ms = |phase| takeover.phase(phase).map(millis);
        info!(
            group = takeover.group,
            epoch = takeover.epoch,
            reason = takeover.reason.code(),
            from = takeover.origin.label(),
            decided_ms = ms(Phase::Decided),
            ledger_ms = ms(Phase::Ledger),
            vip_up_ms = ms(Phase::VipUp),
            arp_sent_ms = ms(Phase::ArpSent),
            online_ms = ms(Phase::Online),
            "takeover timeline"
        );
    }

    async fn stop_group(&mut self, group: String, cause: StopCause, epoch: u64) {
        self.resources.stop(&group, &self.config).await;
        self.telemetry.metrics.owned(&group, false);
        match cause {
            StopCause::Fence => {
                warn!(group, "group stopped: fenced");
                self.hook(&group, TransitionKind::Fenced, event::FENCED, epoch);
            }
            StopCause::Release(reason) => {
                info!(group, reason = reason.code(), "group stopped: handed over");
                self.hook(&group, TransitionKind::Released, reason.code(), epoch);
            }
            StopCause::Removed => {
                info!(group, "group stopped: removed from the configuration");
                self.hook(&group, TransitionKind::Released, hook::REMOVED, epoch);
            }
        }
        self.followups.push_back(Input::Offline { group });
    }

    /// A watched resource reported: repaired in place, or the group is unable here
    /// and the engine hands it over.
    pub(super) async fn resource_event(&mut self, event: ResourceEvent) {
        let Some(repair) = self.resources.repair(event, &self.config).await else {
            return;
        };
        self.report_due = true;
        let failed_over = repair.failed_over;
        let group = repair.group.clone();
        self.backend.notice(Notice::ResourceFailed(repair));
        if failed_over {
            let epoch = self.owned.get(&group).map_or(0, |h| h.epoch);
            self.hook(
                &group,
                TransitionKind::Failed,
                ResourceReason::RestartLimitReached.code(),
                epoch,
            );
            self.step(Input::Unable {
                groups: self.resources.unable(),
            })
            .await;
        }
    }

    /// Queues the group's transition hook, if it has one.
    fn hook(&self, group: &str, kind: TransitionKind, reason: &str, epoch: u64) {
        let Some((_, runner)) = self.hooks.get(group) else {
            return;
        };
        runner.notify(Transition {
            cluster: self.config.model.cluster.clone(),
            group: group.to_owned(),
            node: self.node.clone(),
            kind,
            reason: reason.to_owned(),
            epoch,
        });
    }
}
