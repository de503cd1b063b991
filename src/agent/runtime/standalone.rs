//! The standalone mode: the agent run from a configuration file and heartbeat key
//! files, without Kubernetes. The file is polled for edits and read again on
//! SIGHUP, the key files on SIGHUP (a key rotation).
//!
//! Owns reading those files. Must never stop the running cluster over a file it
//! cannot use: a file that cannot be read or run is refused and the running
//! configuration and keys stay.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span, warn};

use super::backend::{Backend, LoopOptions, Notice, Report, WitnessAsk};
use super::witness::WitnessClient;
use super::{Agent, AgentError, log_config_error, run_loop};
use crate::contract::model::AgentConfig;
use crate::keyfile::KeyFiles;
use crate::membership::Keyring;

/// How often the standalone agent refreshes its `/state` besides every change.
const STATE_EVERY: Duration = Duration::from_secs(1);

/// What the agent needs to start.
#[derive(Debug)]
pub struct AgentOptions {
    /// The standalone configuration file.
    pub config_path: PathBuf,
    /// This member's node name.
    pub node: String,
    pub keys: Keyring,
    /// The files `keys` were read from, read again on SIGHUP (a key rotation);
    /// `None` when the agent runs without authentication.
    pub key_files: Option<KeyFiles>,
    /// Where to serve /metrics, /healthz, /readyz; `None` disables.
    pub metrics_addr: Option<SocketAddr>,
}

/// Modification time and size of the configuration file, to notice edits.
pub(super) type FileStamp = Option<(SystemTime, u64)>;

pub(super) fn stamp(path: &Path) -> FileStamp {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

fn load(path: &Path) -> Result<AgentConfig, AgentError> {
    let text = std::fs::read_to_string(path).map_err(|source| AgentError::Read {
        path: path.to_owned(),
        source,
    })?;
    AgentConfig::from_yaml(&text).map_err(|source| AgentError::Config {
        origin: path.display().to_string(),
        source,
    })
}

/// The standalone mode: nothing to record, and the report goes only to `/state`
/// (the loop publishes it there); the witness is `failover witness` at
/// `spec.witness`.
struct Standalone {
    witness: WitnessClient,
}

impl Backend for Standalone {
    fn witness_request(&mut self, ask: WitnessAsk<'_>) -> bool {
        self.witness.request(&ask);
        true
    }
    fn notice(&mut self, _: Notice) {}
    fn report_every(&self) -> Option<Duration> {
        // `/state` is at most this old: besides the changes, what the report says
        // of time (an explanation's quarantine, the failovers within the period)
        // moves on by itself.
        Some(STATE_EVERY)
    }
    fn report(&mut self, _: Option<Report>) {}
}

/// Runs the agent until SIGTERM/SIGINT and a graceful leave.
pub async fn run(options: AgentOptions) -> Result<(), AgentError> {
    // Stamp before reading, so an edit in between is noticed by the first poll.
    let file_stamp = stamp(&options.config_path);
    let config = load(&options.config_path)?;
    let span = info_span!("agent", cluster = %config.model.cluster, node = %options.node);
    let start = Instant::now();
    // Only witness answers come this way, one request at a time.
    let (updates, updates_rx) = mpsc::channel(4);
    let loop_options = LoopOptions {
        node: options.node,
        keys: options.keys,
        metrics_addr: options.metrics_addr,
        origin: options.config_path.display().to_string(),
        start,
        updates: Some(updates_rx),
        backend: Box::new(Standalone {
            witness: WitnessClient::new(updates, start),
        }),
        accept_pushes: options.key_files.is_some(),
    };
    run_loop(
        loop_options,
        config,
        Some((options.config_path, file_stamp, options.key_files)),
    )
    .instrument(span)
    .await
}

impl Agent {
    /// Reads the standalone key files again (SIGHUP): a key rotation. A file that
    /// cannot be read or holds a short key keeps the running keys.
    pub(super) fn reload_keys(&mut self) {
        if let Some(keys) = self.key_files.as_ref().and_then(KeyFiles::reread) {
            self.publish_keys(&keys);
            self.engine.set_keys(keys);
        }
    }

    /// Reloads the standalone configuration file (SIGHUP, or when it changed).
    pub(super) async fn reload(&mut self) {
        let Some(path) = &self.config_path else {
            info!("configuration comes from the cluster; nothing to reload");
            return;
        };
        let config = match load(path) {
            Ok(config) => config,
            Err(error) => {
                self.telemetry.metrics.config_reload("rejected");
                log_config_error(&error);
                warn!("keeping the running configuration");
                return;
            }
        };
        self.apply(config).await;
    }
}
