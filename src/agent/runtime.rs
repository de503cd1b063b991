//! The agent runtime shared by both modes: a thin async shell around one [`Engine`].
//!
//! It owns the real IO of one member — the heartbeat UDP socket, the tokio timers,
//! the signals, the VIP driver and the telemetry endpoint — and takes its
//! configuration either from a file (standalone, [`run`]) or from [`Update`]s another
//! task pushes (the Kubernetes mode, `agent::kube`), whose [`Backend`] also answers
//! the witness requests and records what the node does. It
//! does with them exactly what the simulator (`sim::World::feed`/`output`) does
//! with its models: feed every event to the engine with the local monotonic time,
//! then carry out every output in order. VIP operations are awaited inline in the
//! event loop: they take well under a millisecond, and their order relative to the
//! engine's inputs is what keeps two nodes from holding a VIP at once.
//!
//! It must never decide ownership (the engine does), never hold a VIP the engine did
//! not ask for, never wait on the Kubernetes API (the backend answers through the
//! updates channel), and never exit while it still holds one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::announce::{self, Detection};
use super::config::{AgentConfig, ConfigError};
use super::vip::{BoundVip, VipDriver, VipError, VirtualIp};
use crate::cli::error_report;
use crate::engine::{Engine, EngineConfig, Event, Input, Output, StopCause, clear_token};
use crate::membership::{Counters, Keyring};
use crate::placement::{Reason, UnableReason};
use crate::telemetry::metrics::Phase;
use crate::telemetry::{Telemetry, http};

/// How often the configuration file's mtime and size are checked.
const FILE_POLL: Duration = Duration::from_millis(500);
/// How often VIP eligibility (the VIP's subnet on an interface) is checked again; a
/// group whose start failed stays unable here until the next check.
const ELIGIBILITY_RECHECK: Duration = Duration::from_secs(5);
/// After SIGTERM, how long beyond `deadAfter` the agent waits for its groups to be
/// handed over before it drops them anyway and exits.
const LEAVE_GRACE: Duration = Duration::from_secs(2);
/// Largest heartbeat datagram read (larger ones are truncated and then dropped by
/// the codec as malformed).
const RECV_BUFFER: usize = 65536;

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

/// The standalone agent's heartbeat key files: the key it signs with and, during a
/// rotation, the previous one it also accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    pub current: PathBuf,
    pub previous: Option<PathBuf>,
}

impl KeyFiles {
    /// Reads both files into a keyring.
    pub fn read(&self) -> Result<Keyring, AgentError> {
        let current = read_key_file(&self.current)?;
        let previous = self.previous.as_deref().map(read_key_file).transpose()?;
        Keyring::new(current, previous).map_err(|source| AgentError::Key {
            path: self.current.clone(),
            source,
        })
    }
}

/// Why the agent could not start (once running, it only logs).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: cannot run this configuration")]
    Config {
        /// Where the configuration came from (a file, a ConfigMap).
        origin: String,
        #[source]
        source: ConfigError,
    },
    #[error("VIP driver")]
    Vip(#[source] VipError),
    #[error("cannot bind the heartbeat socket {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve metrics on {addr}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install signal handlers")]
    Signal(#[source] std::io::Error),
    #[error("heartbeat key in {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: crate::membership::AuthError,
    },
}

/// Reads a heartbeat key file. Trailing whitespace is not part of the key, so a key
/// written with `echo` or an editor works the same on every member.
pub fn read_key_file(path: &Path) -> Result<Vec<u8>, AgentError> {
    let mut key = std::fs::read(path).map_err(|source| AgentError::Read {
        path: path.to_owned(),
        source,
    })?;
    while key.last().is_some_and(u8::is_ascii_whitespace) {
        key.pop();
    }
    Ok(key)
}

/// Modification time and size of the configuration file, to notice edits.
type FileStamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> FileStamp {
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

/// Logs every problem of a configuration that cannot run, one line each.
pub(crate) fn log_config_error(error: &AgentError) {
    if let AgentError::Config {
        origin,
        source: ConfigError::Invalid(invalid),
    } = error
    {
        for problem in &invalid.problems {
            error!(%origin, %problem, "invalid configuration");
        }
        error!(
            %origin,
            problems = invalid.problems.len(),
            "configuration rejected"
        );
    } else {
        error!(error = %error_report(error), "configuration rejected");
    }
}

/// What another task pushes into the event loop (the Kubernetes mode's watches, its
/// witness answers and what the group records say).
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
}

/// How this node came to run a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    /// The ownership epoch (it may rise while the node runs the group, when the
    /// group's record was higher: [`Input::Recorded`]).
    pub epoch: u64,
    /// Why placement made this node the owner.
    pub reason: Reason,
    pub message: String,
    /// When this node took it (wall clock).
    pub since: Timestamp,
}

/// A person-visible transition the backend may publish (as a Kubernetes Event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// This node brought a group online.
    Took {
        group: String,
        reason: Reason,
        message: String,
    },
    Fenced {
        group: String,
    },
    QuorumLost,
    QuorumGained,
}

/// What a mode adds to the shared event loop. Every method returns at once: work
/// that talks to a remote service is spawned, and its answer comes back as an
/// [`Update`].
pub trait Backend: Send {
    /// Acquire or renew the witness and answer with [`Input::Witness`] in an [`Update::Engine`]; `false`:
    /// this mode has no witness (the loop refuses).
    fn witness_request(&mut self) -> bool;
    /// A transition a person cares about.
    fn notice(&mut self, notice: Notice);
    /// How often [`Backend::report`] wants a fresh [`Report`] besides the one sent
    /// at once after every change; `None`: never.
    fn report_every(&self) -> Option<Duration>;
    /// The node's state; `None` while the configuration is deleted (nothing to
    /// report, nothing to record).
    fn report(&mut self, report: Option<Report>);
}

/// The standalone mode: nothing to record or report.
struct Standalone;

impl Backend for Standalone {
    // Witness quorum is refused at load; refusing keeps the engine consistent
    // should that ever change.
    fn witness_request(&mut self) -> bool {
        error!("witness request in standalone mode; refused");
        false
    }
    fn notice(&mut self, _: Notice) {}
    fn report_every(&self) -> Option<Duration> {
        None
    }
    fn report(&mut self, _: Option<Report>) {}
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
    /// Updates pushed by another task; `None` in standalone mode.
    pub updates: Option<mpsc::Receiver<Update>>,
    pub backend: Box<dyn Backend>,
}

/// One group this node runs: its VIPs on their interfaces and the announcer.
#[derive(Debug)]
struct Held {
    vips: Vec<BoundVip>,
    announcer: Option<JoinHandle<()>>,
    last_renew: Duration,
}

/// The event loop's state.
struct Agent {
    node: String,
    /// The standalone configuration file (`None` in the Kubernetes mode).
    config_path: Option<PathBuf>,
    /// The standalone key files, read again on SIGHUP.
    key_files: Option<KeyFiles>,
    backend: Box<dyn Backend>,
    /// How this node came to run each group it runs (from its start to its stop).
    owned: BTreeMap<String, (Reason, String, Timestamp)>,
    /// Something the report shows changed: send it at once.
    report_due: bool,
    /// The configuration was deleted: no groups run until one comes again.
    config_deleted: bool,
    config: AgentConfig,
    engine: Engine,
    socket: Arc<UdpSocket>,
    driver: VipDriver,
    telemetry: Arc<Telemetry>,
    start: Instant,
    /// Addresses heartbeats go to: every other member.
    peers: Vec<SocketAddr>,
    /// Peers whose last send failed (logged once per failure streak).
    send_failing: BTreeSet<SocketAddr>,
    held: BTreeMap<String, Held>,
    /// Groups whose VIPs this node cannot host (subnet absent).
    ineligible: BTreeSet<String>,
    /// Groups whose start failed here, until the next eligibility check.
    start_failed: BTreeSet<String>,
    /// Inputs that outputs lead to (Online, Offline, Unable), fed after the batch.
    followups: VecDeque<Input<'static>>,
    counters: Counters,
    /// The last peer failure this node saw, for the takeover timeline.
    detected: Option<Duration>,
    /// Takeovers in progress: group -> local time of the detection that caused them.
    timelines: BTreeMap<String, Duration>,
    file_stamp: FileStamp,
}

/// Runs the agent until SIGTERM/SIGINT and a graceful leave.
pub async fn run(options: AgentOptions) -> Result<(), AgentError> {
    // Stamp before reading, so an edit in between is noticed by the first poll.
    let file_stamp = stamp(&options.config_path);
    let config = load(&options.config_path)?;
    let span = info_span!("agent", cluster = %config.model.cluster, node = %options.node);
    let loop_options = LoopOptions {
        node: options.node,
        keys: options.keys,
        metrics_addr: options.metrics_addr,
        origin: options.config_path.display().to_string(),
        start: Instant::now(),
        updates: None,
        backend: Box::new(Standalone),
    };
    run_loop(
        loop_options,
        config,
        Some((options.config_path, file_stamp, options.key_files)),
    )
    .instrument(span)
    .await
}

/// The event loop both modes share: runs one member with `config` until
/// SIGTERM/SIGINT and a graceful leave. `file` is the standalone configuration file
/// (polled and reloaded on SIGHUP) with its stamp when read, and the key files
/// (read again on SIGHUP).
pub(crate) async fn run_loop(
    options: LoopOptions,
    config: AgentConfig,
    file: Option<(PathBuf, FileStamp, Option<KeyFiles>)>,
) -> Result<(), AgentError> {
    let me = config
        .address_of(&options.node)
        .map_err(|source| AgentError::Config {
            origin: options.origin.clone(),
            source,
        })?;
    for warning in &config.warnings {
        warn!(%warning, "not run standalone");
    }

    // Before anything else: what a crashed agent left behind must not answer for a VIP.
    let driver = VipDriver::new().map_err(AgentError::Vip)?;
    let removed = driver
        .remove_stale(&config.all_vips())
        .await
        .map_err(AgentError::Vip)?;
    if removed > 0 {
        info!(removed, "removed stale VIPs left by an earlier run");
    }

    let socket = UdpSocket::bind(me)
        .await
        .map_err(|source| AgentError::Bind { addr: me, source })?;
    let telemetry = Arc::new(Telemetry::new());
    if let Some(addr) = options.metrics_addr {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::Metrics { addr, source })?;
        info!(%addr, "serving /metrics, /healthz, /readyz");
        tokio::spawn(http::serve(listener, telemetry.clone()));
    }
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(AgentError::Signal)?;

    let start = options.start;
    let wall = Timestamp::now();
    // Microseconds since the epoch: strictly larger than any earlier run's.
    let incarnation = u64::try_from(wall.as_microsecond()).unwrap_or_default();
    let engine = Engine::new(
        &options.node,
        config.model.clone(),
        config.hash,
        EngineConfig::for_model(&config.model),
        options.keys,
        incarnation,
        start.elapsed(),
        wall,
    );
    let report_every = options.backend.report_every();
    let mut updates = options.updates;
    let (config_path, file_stamp, key_files) = match file {
        Some((path, stamp, keys)) => (Some(path), Some(stamp), keys),
        None => (None, None, None),
    };
    let socket = Arc::new(socket);
    let mut agent = Agent {
        node: options.node,
        config_path,
        key_files,
        backend: options.backend,
        owned: BTreeMap::new(),
        report_due: true,
        config_deleted: false,
        peers: Vec::new(),
        send_failing: BTreeSet::new(),
        config,
        engine,
        socket: socket.clone(),
        driver,
        telemetry,
        start,
        held: BTreeMap::new(),
        ineligible: BTreeSet::new(),
        start_failed: BTreeSet::new(),
        followups: VecDeque::new(),
        counters: Counters::default(),
        detected: None,
        timelines: BTreeMap::new(),
        file_stamp: file_stamp.flatten(),
    };
    agent.apply_peers();
    info!(
        address = %me,
        incarnation,
        config_hash = format_args!("{:016x}", agent.config.hash),
        members = agent.config.model.members.len(),
        groups = agent.config.model.groups.len(),
        "agent started"
    );
    agent.check_eligibility().await;
    // After eligibility, as for every configuration: a step may claim groups.
    agent.apply_clears().await;

    let origin = tokio::time::Instant::from_std(start);
    let mut file_poll = tokio::time::interval(FILE_POLL);
    let mut recheck = tokio::time::interval(ELIGIBILITY_RECHECK);
    // Without a report period the timer still exists but nearly never fires.
    let mut report = tokio::time::interval(report_every.unwrap_or(Duration::from_secs(86_400)));
    for timer in [&mut file_poll, &mut recheck, &mut report] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.reset();
    }
    let mut leave_deadline: Option<Duration> = None;
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        // Holds nothing and stayed to vote until its groups were handed over.
        if agent.engine.ready_to_exit(agent.now()) {
            info!("left the cluster gracefully");
            break;
        }
        let mut wake = agent.engine.poll_timeout();
        if let Some(deadline) = leave_deadline {
            if agent.now() >= deadline {
                warn!("groups not handed over in time; dropping them and exiting");
                break;
            }
            wake = wake.min(deadline);
        }
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, _from)) => agent.step(Input::Datagram(&buf[..n])).await,
                Err(error) => {
                    warn!(%error, "heartbeat socket receive failed");
                    // Never spin on a persistent error.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            () = tokio::time::sleep_until(origin + wake) => agent.step(Input::Tick).await,
            _ = term.recv() => agent.leave(&mut leave_deadline).await,
            _ = int.recv() => agent.leave(&mut leave_deadline).await,
            _ = hup.recv() => {
                info!("SIGHUP: reloading the configuration");
                agent.reload_keys();
                agent.reload().await;
            }
            _ = file_poll.tick(), if agent.config_path.is_some() => {
                let now_stamp = agent.config_path.as_deref().and_then(stamp);
                if now_stamp != agent.file_stamp {
                    agent.file_stamp = now_stamp;
                    info!("configuration file changed: reloading");
                    agent.reload().await;
                }
            }
            update = next_update(&mut updates) => match update {
                Some(update) => agent.update(update).await,
                None => {
                    // The feeding task ended (a bug or shutdown): keep running on
                    // the last configuration, as through an API server outage.
                    warn!("configuration updates ended; keeping the running configuration");
                    updates = None;
                }
            },
            _ = report.tick(), if report_every.is_some() => agent.report_due = true,
            _ = recheck.tick() => {
                agent.start_failed.clear();
                agent.check_eligibility().await;
            }
        }
        // Every change is reported at once (the backend spaces its writes).
        if agent.report_due && report_every.is_some() {
            agent.report_due = false;
            let report = (!agent.config_deleted).then(|| agent.report());
            agent.backend.report(report);
        }
    }
    agent.shutdown().await;
    Ok(())
}

/// The next update, or never when there is no channel.
async fn next_update(updates: &mut Option<mpsc::Receiver<Update>>) -> Option<Update> {
    match updates {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Agent {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Applies one update pushed by the mode's tasks.
    async fn update(&mut self, update: Update) {
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
    fn report(&self) -> Report {
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
                    let (reason, message, since) = self.owned.get(group)?;
                    let owned = Owned {
                        epoch,
                        reason: *reason,
                        message: message.clone(),
                        since: *since,
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
        }
    }

    /// Hands the configuration's clear-failures values to the engine. Repeating a
    /// value changes nothing there, so every configuration passes all of them.
    async fn apply_clears(&mut self) {
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

    fn apply_peers(&mut self) {
        let node = &self.node;
        self.peers = self
            .config
            .addresses
            .iter()
            .filter(|(name, _)| *name != node)
            .map(|(_, addr)| *addr)
            .collect();
        let model = &self.config.model;
        self.telemetry.metrics.retain_config(
            model
                .members
                .iter()
                .map(|m| m.name.as_str())
                .filter(|m| m != node),
            model.groups.iter().map(|g| g.name.as_str()),
        );
        let now = self.now();
        for m in model.members.iter().filter(|m| &m.name != node) {
            let alive = self.engine.membership().alive(&m.name, now);
            self.telemetry.metrics.peer(&m.name, alive);
        }
        for group in self.held.keys() {
            self.telemetry.metrics.owned(group, true);
        }
    }

    /// Feeds one input, then carries out every output it leads to.
    async fn step(&mut self, input: Input<'_>) {
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
                for addr in &self.peers {
                    // try_send_to: a full socket buffer must not stall the loop; the
                    // heartbeat is repeated next interval anyway.
                    match self.socket.try_send_to(&bytes, *addr) {
                        Ok(_) => {
                            if self.send_failing.remove(addr) {
                                info!(%addr, "heartbeat sends work again");
                            }
                        }
                        Err(error) => {
                            self.telemetry.metrics.send_error();
                            if self.send_failing.insert(*addr) {
                                warn!(%addr, %error, "heartbeat send failed (counted; logged once until it works again)");
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
                self.owned
                    .insert(group.clone(), (reason, message.clone(), Timestamp::now()));
                self.report_due = true;
                self.backend.notice(Notice::Took {
                    group: group.clone(),
                    reason,
                    message,
                });
                self.start_group(group, reason).await;
            }
            Output::Renew { group } => self.renew(&group).await,
            Output::Stop { group, cause } => {
                self.owned.remove(&group);
                self.report_due = true;
                self.stop_group(group, cause).await
            }
            Output::WitnessRequest => {
                if !self.backend.witness_request() {
                    self.followups.push_back(Input::Witness {
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
                if let Some(at) = self
                    .detected
                    .filter(|&at| now.saturating_sub(at) <= self.config.model.dead_after)
                {
                    metrics.phase(Phase::Decided, (now - at).as_secs_f64());
                    self.timelines.insert(group.clone(), at);
                }
                info!(group, reason = reason.code(), why = %message, "claiming the group");
            }
            Event::Won { group, epoch } => {
                if let Some(&at) = self.timelines.get(&group) {
                    metrics.phase(Phase::Ledger, now.saturating_sub(at).as_secs_f64());
                }
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
        }
    }

    /// Brings a group's VIPs up; on any failure takes back what it added and marks
    /// the group unable here, so the engine stops it and placement moves it on.
    async fn start_group(&mut self, group: String, reason: crate::placement::Reason) {
        // The engine never starts a group twice without a stop in between; should it
        // ever, the old announcer must not outlive the VIPs it announces.
        if let Some(task) = self.held.remove(&group).and_then(|h| h.announcer) {
            task.abort();
        }
        let lifetime = self.config.vip_lifetime();
        let wanted = self.config.vips.get(&group).cloned().unwrap_or_default();
        let mut bound = Vec::with_capacity(wanted.len());
        let mut failure = None;
        for vip in &wanted {
            let result = match self.driver.resolve(vip).await {
                Ok(b) => self.driver.acquire(&b, lifetime).await.map(|()| b),
                Err(e) => Err(e),
            };
            match result {
                Ok(b) => bound.push(b),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if let Some(error) = failure {
            self.telemetry.metrics.vip_error("acquire");
            error!(group, error = %error_report(&error), "cannot bring the group's VIPs up; giving the group up here");
            for b in &bound {
                self.release_vip(&group, b).await;
            }
            self.timelines.remove(&group);
            self.start_failed.insert(group);
            self.followups.push_back(Input::Unable {
                groups: self.unable(),
            });
            return;
        }
        let now = self.now();
        let detection = self.timelines.remove(&group).map(|at| {
            let since = now.saturating_sub(at).as_secs_f64();
            self.telemetry.metrics.phase(Phase::VipUp, since);
            info!(group, vip_up_ms = since * 1e3, "takeover: VIPs up");
            Detection {
                start: self.start,
                at,
            }
        });
        self.telemetry.metrics.failover(reason);
        self.telemetry.metrics.owned(&group, true);
        // The first announcement goes out here, before anything else: until the
        // neighbours' caches move, clients still send to the old owner.
        announce::round(&self.driver, &group, &bound, &self.telemetry, true).await;
        if let Some(d) = detection {
            let since = d.start.elapsed().saturating_sub(d.at);
            self.telemetry
                .metrics
                .phase(Phase::ArpSent, since.as_secs_f64());
            info!(
                group,
                arp_sent_ms = since.as_secs_f64() * 1e3,
                "takeover: first announcement sent"
            );
        }
        let announcer = (!bound.is_empty()).then(|| {
            announce::spawn(
                self.driver.clone(),
                group.clone(),
                bound.clone(),
                self.config.announcements,
                self.telemetry.clone(),
            )
        });
        info!(group, vips = bound.len(), "group online");
        self.held.insert(
            group.clone(),
            Held {
                vips: bound,
                announcer,
                last_renew: now,
            },
        );
        self.followups.push_back(Input::Online { group });
    }

    /// Renews the VIPs' kernel lifetime. Renewing a quarter lifetime apart keeps the
    /// VIP up with room to spare while sparing netlink at 5 ms heartbeats; a killed
    /// agent's VIP still disappears within one lifetime.
    async fn renew(&mut self, group: &str) {
        let now = self.now();
        let lifetime = self.config.vip_lifetime();
        let Some(held) = self.held.get_mut(group) else {
            return;
        };
        if now.saturating_sub(held.last_renew) < lifetime / 4 {
            return;
        }
        held.last_renew = now;
        for b in &held.vips {
            if let Err(error) = self.driver.acquire(b, lifetime).await {
                self.telemetry.metrics.vip_error("renew");
                error!(group, error = %error_report(&error), "cannot renew VIP lifetime");
            }
        }
    }

    async fn stop_group(&mut self, group: String, cause: StopCause) {
        let held = self.held.remove(&group);
        let vips = match held {
            Some(held) => {
                // Abort first: no announcement may leave after the release.
                if let Some(task) = held.announcer {
                    task.abort();
                }
                held.vips
            }
            // A start that failed half-way released what it added; nothing to do.
            None => Vec::new(),
        };
        for b in &vips {
            self.release_vip(&group, b).await;
        }
        self.telemetry.metrics.owned(&group, false);
        match cause {
            StopCause::Fence => warn!(group, "group stopped: fenced"),
            StopCause::Release(reason) => {
                info!(group, reason = reason.code(), "group stopped: handed over")
            }
            StopCause::Removed => info!(group, "group stopped: removed from the configuration"),
        }
        self.followups.push_back(Input::Offline { group });
    }

    async fn release_vip(&self, group: &str, bound: &BoundVip) {
        if let Err(error) = self.driver.release(bound).await {
            // The lifetime still removes it: we no longer renew it.
            self.telemetry.metrics.vip_error("release");
            error!(group, vip = %bound.vip(), error = %error_report(&error), "cannot release VIP; it expires with its lifetime");
        }
    }

    /// Groups this node cannot host now.
    fn unable(&self) -> BTreeMap<String, UnableReason> {
        let absent = self
            .ineligible
            .iter()
            .map(|g| (g.clone(), UnableReason::SubnetAbsent));
        let failed = self
            .start_failed
            .iter()
            .map(|g| (g.clone(), UnableReason::ResourceFailed));
        absent.chain(failed).collect()
    }

    async fn prepare_announcements(&self, vip: &VirtualIp) -> Result<(), VipError> {
        let bound = self.driver.resolve(vip).await?;
        self.driver.prepare(&bound).await
    }

    /// Checks every group's VIPs against this node's interfaces and tells the engine.
    async fn check_eligibility(&mut self) {
        self.update_ineligible().await;
        let unable = self.unable();
        self.step(Input::Unable { groups: unable }).await;
    }

    /// Checks every group's VIPs against this node's interfaces.
    async fn update_ineligible(&mut self) {
        let mut ineligible = BTreeSet::new();
        for (group, vips) in &self.config.vips {
            for vip in vips {
                let ok = match self.driver.eligible(vip).await {
                    Ok(true) => {
                        // Ready the announcement socket now, not during a takeover.
                        if let Err(error) = self.prepare_announcements(vip).await {
                            warn!(group, %vip, error = %error_report(&error), "cannot prepare VIP announcements");
                        }
                        true
                    }
                    Ok(ok) => ok,
                    Err(error) => {
                        warn!(group, %vip, error = %error_report(&error), "cannot check VIP eligibility");
                        false
                    }
                };
                if !ok {
                    ineligible.insert(group.clone());
                    break;
                }
            }
        }
        if ineligible != self.ineligible {
            for group in ineligible.difference(&self.ineligible) {
                warn!(
                    group,
                    "cannot host the group here: no interface has its VIP's subnet"
                );
            }
            self.ineligible = ineligible;
        }
    }

    async fn leave(&mut self, deadline: &mut Option<Duration>) {
        if deadline.is_some() {
            info!("second stop signal: still handing groups over");
            return;
        }
        let limit = self.config.model.dead_after + LEAVE_GRACE;
        info!(
            groups = self.held.len(),
            "stop signal: leaving the cluster gracefully"
        );
        *deadline = Some(self.now() + limit);
        self.step(Input::Leave).await;
    }

    /// Reads the standalone key files again (SIGHUP): a key rotation. A file that
    /// cannot be read or holds a short key keeps the running keys.
    fn reload_keys(&mut self) {
        let Some(files) = &self.key_files else {
            return;
        };
        match files.read() {
            Ok(keys) => {
                info!(
                    previous = files.previous.is_some(),
                    "heartbeat keys reloaded"
                );
                self.engine.set_keys(keys);
            }
            Err(error) => {
                error!(error = %error_report(&error), "heartbeat keys not reloaded; keeping the running keys");
            }
        }
    }

    /// Reloads the standalone configuration file (SIGHUP, or when it changed).
    async fn reload(&mut self) {
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

    /// Applies a validated configuration live; one this member cannot run (it is no
    /// longer a member) is refused and the running one stays.
    async fn apply(&mut self, config: AgentConfig) {
        let me = match config.address_of(&self.node) {
            Ok(me) => me,
            Err(error) => {
                self.telemetry.metrics.config_reload("rejected");
                error!(error = %error_report(&error), "configuration rejected; keeping the running one");
                return;
            }
        };
        // Clear-failures values ride beside the configuration, outside its hash.
        if config.hash == self.config.hash && !self.config_deleted {
            self.config.clear_failures = config.clear_failures;
            self.apply_clears().await;
            self.telemetry.metrics.config_reload("unchanged");
            debug!("configuration unchanged");
            return;
        }
        if std::mem::take(&mut self.config_deleted) {
            info!("the configuration is back: running its groups again");
        }
        self.report_due = true;
        if Some(me) != self.socket.local_addr().ok() {
            warn!(address = %me, "this member's heartbeat address or port changed; restart the agent to use it");
        }
        for warning in &config.warnings {
            warn!(%warning, "not run standalone");
        }
        self.update_held_vips(&config).await;
        info!(
            config_hash = format_args!("{:016x}", config.hash),
            "applying the new configuration"
        );
        let (model, hash) = (config.model.clone(), config.hash);
        self.config = config;
        self.apply_peers();
        self.telemetry.metrics.config_reload("applied");
        // Eligibility for the new groups first, so that the engine never sees a
        // group it might claim without knowing whether this node can host it.
        self.update_ineligible().await;
        self.engine.handle(
            self.now(),
            Input::Unable {
                groups: self.unable(),
            },
        );
        self.step(Input::Configure { model, hash }).await;
        self.apply_clears().await;
    }

    /// The configuration was deleted (its cluster was deleted): takes every group
    /// offline (the engine stops them, VIPs removed) and reports nothing, so no
    /// Lease is written, until a configuration comes again. The node keeps
    /// heartbeating its peers, so a configuration that comes back runs at once.
    async fn config_deleted(&mut self) {
        if self.config_deleted {
            return;
        }
        warn!(
            groups = self.held.len(),
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
        self.update_ineligible().await;
        let hash = self.config.hash;
        self.step(Input::Configure { model, hash }).await;
    }

    /// For groups this node keeps holding, removes VIPs the new configuration dropped
    /// and adds the ones it introduced; VIPs that stay are not touched.
    async fn update_held_vips(&mut self, config: &AgentConfig) {
        let lifetime = config.vip_lifetime();
        let groups: Vec<String> = self.held.keys().cloned().collect();
        for group in groups {
            let Some(wanted) = config.vips.get(&group) else {
                continue; // removed: the engine stops it
            };
            let Some(held) = self.held.remove(&group) else {
                continue;
            };
            let (keep, drop): (Vec<BoundVip>, Vec<BoundVip>) = held
                .vips
                .into_iter()
                .partition(|b| wanted.contains(b.vip()));
            for b in &drop {
                info!(group, vip = %b.vip(), "VIP removed from the group");
                self.release_vip(&group, b).await;
            }
            let mut vips = keep;
            let added: Vec<&VirtualIp> = wanted
                .iter()
                .filter(|v| !vips.iter().any(|b| b.vip() == *v))
                .collect();
            let mut new = Vec::new();
            for vip in added {
                let result = match self.driver.resolve(vip).await {
                    Ok(b) => self.driver.acquire(&b, lifetime).await.map(|()| b),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(b) => {
                        info!(group, %vip, "VIP added to the group");
                        new.push(b);
                    }
                    Err(error) => {
                        self.telemetry.metrics.vip_error("acquire");
                        error!(group, %vip, error = %error_report(&error), "cannot add the group's new VIP");
                    }
                }
            }
            let mut announcer = held.announcer;
            if !new.is_empty() {
                if let Some(task) = announcer.take() {
                    task.abort();
                }
                vips.extend(new);
                announce::round(&self.driver, &group, &vips, &self.telemetry, true).await;
                announcer = Some(announce::spawn(
                    self.driver.clone(),
                    group.clone(),
                    vips.clone(),
                    config.announcements,
                    self.telemetry.clone(),
                ));
            }
            self.held.insert(
                group,
                Held {
                    vips,
                    announcer,
                    last_renew: held.last_renew,
                },
            );
        }
    }

    /// Drops whatever is still held (only after the leave deadline) before exiting.
    async fn shutdown(&mut self) {
        for (group, held) in std::mem::take(&mut self.held) {
            warn!(group, "releasing the group's VIPs at exit");
            if let Some(task) = held.announcer {
                task.abort();
            }
            for b in &held.vips {
                self.release_vip(&group, b).await;
            }
        }
        // Belt and braces: no VIP of the configuration stays on this node.
        if let Err(error) = self.driver.remove_stale(&self.config.all_vips()).await {
            error!(error = %error_report(&error), "cannot check for VIPs left at exit");
        }
        // Only a graceful exit gets here: after a crash the settings stay, so that the
        // dead agent's node keeps quiet about the VIPs its kernel still holds.
        if let Err(error) = self.driver.restore_kernel().await {
            error!(error = %error_report(&error), "cannot restore the interfaces' ARP settings at exit");
        }
    }
}
