//! Applying a configuration while the agent runs: a new one (from the file or the
//! ClusterConfig) live, without touching what stays the same, and the deletion of
//! the configuration, which takes every group offline until one comes again.
//!
//! Owns the order of that change: held groups adjusted, eligibility known, and only
//! then the engine reconfigured, so the engine never sees a group it might claim
//! without knowing whether this node can host it. Must never run a configuration
//! this member is not part of.

use std::sync::Arc;

use tracing::{debug, error, info, warn};

use super::{Agent, witness_ref};
use crate::agent::resources::hook::{Hook, HookRunner};
use crate::agent::resources::process::CommandSpec;
use crate::contract::model::AgentConfig;
use crate::engine::{Input, clear_token};
use crate::membership::LinkState;
use crate::telemetry::error_report;

impl Agent {
    /// Applies a validated configuration live; one this member cannot run (it is no
    /// longer a member) is refused and the running one stays.
    pub(super) async fn apply(&mut self, config: AgentConfig) {
        let me = match config.links_of(&self.node) {
            Ok(me) => me.to_vec(),
            Err(error) => {
                self.telemetry.metrics.config_reload("rejected");
                error!(error = %error_report(&error), "configuration rejected; keeping the running one");
                return;
            }
        };
        // Clear-failures values ride beside the configuration, outside its hash.
        if config.hash == self.config.hash && !self.config_deleted {
            self.config.clear_failures = config.clear_failures;
            self.publish_config();
            self.apply_clears().await;
            self.telemetry.metrics.config_reload("unchanged");
            debug!("configuration unchanged");
            return;
        }
        if std::mem::take(&mut self.config_deleted) {
            info!("the configuration is back: running its groups again");
        }
        self.report_due = true;
        let bound: Vec<_> = self
            .sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect();
        if me != bound {
            warn!(addresses = ?me, bound = ?bound, "this member's heartbeat addresses, links or port changed; restart the agent to use them (until then heartbeats go over the links it has sockets for)");
        }
        for warning in &config.warnings {
            warn!(%warning, "accepted, not run by the agent");
        }
        self.resources.reconfigure(&config).await;
        info!(
            config_hash = format_args!("{:016x}", config.hash),
            "applying the new configuration"
        );
        let (model, hash, witness) = (config.model.clone(), config.hash, witness_ref(&config));
        self.config = config;
        self.publish_config();
        self.apply_peers();
        self.apply_hooks();
        self.telemetry.metrics.config_reload("applied");
        // Eligibility for the new groups first, so that the engine never sees a
        // group it might claim without knowing whether this node can host it.
        self.resources.check_eligibility(&self.config).await;
        self.engine.handle(
            self.now(),
            Input::Unable {
                groups: self.resources.unable(),
            },
        );
        self.step(Input::Configure {
            model,
            hash,
            witness,
        })
        .await;
        self.apply_clears().await;
    }

    /// Hands the configuration's clear-failures values to the engine. Repeating a
    /// value changes nothing there, so every configuration passes all of them.
    pub(super) async fn apply_clears(&mut self) {
        let clears: Vec<(String, String)> = self
            .config
            .clear_failures
            .iter()
            .map(|(g, v)| (g.clone(), v.clone()))
            .collect();
        for (group, value) in clears {
            let token = clear_token(&value);
            if self.engine.clear_token(&group) != token {
                info!(group, value, "failure count cleared");
                self.step(Input::ClearFailures { group, token }).await;
            }
        }
    }

    /// The configuration was deleted (its cluster was deleted): takes every group
    /// offline (the engine stops them, VIPs removed) and reports nothing, so no
    /// Lease is written, until a configuration comes again. The node keeps
    /// heartbeating its peers, so a configuration that comes back runs at once.
    pub(super) async fn config_deleted(&mut self) {
        if self.config_deleted {
            return;
        }
        warn!(
            groups = self.resources.held().count(),
            "the configuration was deleted (was the cluster deleted?): taking every group offline and writing no Lease until it comes back"
        );
        self.config_deleted = true;
        self.report_due = true;
        let model = Arc::new(crate::placement::ClusterModel {
            groups: Vec::new(),
            ..(*self.config.model).clone()
        });
        self.config.model = model.clone();
        self.config.vips.clear();
        self.resources.check_eligibility(&self.config).await;
        let (hash, witness) = (self.config.hash, witness_ref(&self.config));
        self.step(Input::Configure {
            model,
            hash,
            witness,
        })
        .await;
    }

    /// Runs the configuration's transition hooks: a runner per group with a hook,
    /// started anew only for a hook that changed (a changed hook's runner is
    /// dropped, which kills a run in progress).
    pub(super) fn apply_hooks(&mut self) {
        let hooks = &self.config.hooks;
        self.hooks
            .retain(|group, (plan, _)| hooks.get(group) == Some(&*plan));
        for (group, plan) in hooks {
            if !self.hooks.contains_key(group) {
                let hook = Hook {
                    command: CommandSpec::new(plan.argv.iter().cloned()),
                    timeout: plan.timeout,
                };
                self.hooks
                    .insert(group.clone(), (plan.clone(), HookRunner::spawn(hook)));
            }
        }
    }

    pub(super) fn apply_peers(&mut self) {
        let node = &self.node;
        // Link i of every peer is reached from this member's socket of link i; a link
        // added since the start has no socket until a restart.
        let sockets = self.sockets.len();
        self.peers = self
            .config
            .addresses
            .iter()
            .filter(|(name, _)| *name != node)
            .flat_map(|(_, links)| links.iter().copied().enumerate().take(sockets))
            .collect();
        let model = &self.config.model;
        self.telemetry.metrics.retain_config(
            model
                .members
                .iter()
                .map(|m| m.name.as_str())
                .filter(|m| m != node),
            model.groups.iter().map(|g| g.name.as_str()),
            self.config
                .links_of(node)
                .map_or(0, <[_]>::len)
                .min(sockets),
        );
        // The link series were recreated at 0: show the known ones again.
        let members = &self.config.addresses;
        self.links
            .retain(|(peer, link), _| members.get(peer).is_some_and(|l| *link < l.len()));
        for ((peer, link), state) in &self.links {
            self.telemetry
                .metrics
                .link(peer, *link, *state == LinkState::Up);
        }
        let now = self.now();
        for m in model.members.iter().filter(|m| &m.name != node) {
            let alive = self.engine.membership().alive(&m.name, now);
            self.telemetry.metrics.peer(&m.name, alive);
        }
        for group in self.resources.held() {
            self.telemetry.metrics.owned(group, true);
        }
    }
}
