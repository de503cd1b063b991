//! The agent runtime shared by both modes: a thin async shell around one [`Engine`].
//!
//! It owns the real IO of one member — the heartbeat UDP socket, the tokio timers,
//! the signals and the telemetry endpoint — and takes its configuration either from
//! a file (standalone, [`run`]) or from [`Update`]s another task pushes (the
//! Kubernetes mode, `agent::kube`), whose [`Backend`] also answers the witness
//! requests and records what the node does. It does with them exactly what the
//! simulator (`sim::World::feed`/`output`) does with its models: feed every event to
//! the engine with the local monotonic time, then carry out every output in order.
//! The groups' resources are started, renewed and stopped through
//! `agent::resources`, awaited inline in the event loop: VIP operations take well
//! under a millisecond, and their order relative to the engine's inputs is what
//! keeps two nodes from holding a VIP at once.
//!
//! This file holds the event loop and its errors; `outputs.rs` carries out the
//! engine's outputs, `reconfigure.rs` applies a new or deleted configuration,
//! `backend.rs` is what a mode plugs in and gets out, `standalone.rs` the mode that
//! runs from a file.
//!
//! It must never decide ownership (the engine does), never start a group's
//! resources the engine did not ask for, never wait on the Kubernetes API (the
//! backend answers through the updates channel), and never exit while it still
//! holds a group.

mod backend;
mod outputs;
mod push;
mod reconfigure;
mod standalone;
mod witness;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::io::ReadBuf;
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

pub use self::backend::{Backend, LoopOptions, Notice, Report, Update, WitnessAsk};
pub use self::standalone::{AgentOptions, run};
use self::standalone::{FileStamp, stamp};
pub use self::witness::WitnessClient;
use self::witness::witness_ref;
use super::metrics::Telemetry;
use super::resources::hook::HookRunner;
use super::resources::{Change, Resources};
use super::timeline::Timelines;
use super::vip::VipError;
use crate::contract::model::{AgentConfig, ConfigError};
use crate::contract::plan::HookPlan;
use crate::contract::report::AgentState;
use crate::engine::{Engine, EngineConfig, Input};
use crate::keyfile::KeyFiles;
use crate::membership::{Counters, LinkState};
use crate::placement::Reason;
use crate::telemetry::{error_report, http};

/// How often the configuration file's mtime and size are checked.
const FILE_POLL: Duration = Duration::from_millis(500);
/// How often eligibility (the VIPs' subnets on an interface) is checked again; a
/// group whose start failed stays unable here until the next check.
const ELIGIBILITY_RECHECK: Duration = Duration::from_secs(5);
/// After SIGTERM, how long beyond `deadAfter` the agent waits for its groups to be
/// handed over before it drops them anyway and exits.
const LEAVE_GRACE: Duration = Duration::from_secs(2);
/// Largest heartbeat datagram read (larger ones are truncated and then dropped by
/// the codec as malformed).
const RECV_BUFFER: usize = 65536;

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
    #[error("cannot listen for configuration pushes on TCP {addr}")]
    PushBind {
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

/// How this node came to run a group it runs.
struct Holding {
    reason: Reason,
    message: String,
    since: Timestamp,
    epoch: u64,
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
    owned: BTreeMap<String, Holding>,
    /// The transition hook runner of every group that has a hook, with the hook
    /// it runs.
    hooks: BTreeMap<String, (HookPlan, HookRunner)>,
    /// Something the report shows changed: send it at once.
    report_due: bool,
    /// The configuration was deleted: no groups run until one comes again.
    config_deleted: bool,
    config: AgentConfig,
    engine: Engine,
    /// One heartbeat socket per link, bound to this member's address of that link.
    sockets: Vec<Arc<UdpSocket>>,
    /// The resources of the groups this node runs.
    resources: Resources,
    telemetry: Arc<Telemetry>,
    start: Instant,
    /// Where heartbeats go: every other member's address on every link, with the
    /// link (the index of the socket they leave from).
    peers: Vec<(usize, SocketAddr)>,
    /// Peers whose last send failed (logged once per failure streak).
    send_failing: BTreeSet<SocketAddr>,
    /// Inputs that outputs lead to (Online, Offline, Unable), fed after the batch.
    followups: VecDeque<Input<'static>>,
    counters: Counters,
    /// What each link to each peer showed at the last step (only `Up` and `Down`
    /// are kept), for the link metric, log lines and report.
    links: BTreeMap<(String, usize), LinkState>,
    /// When the links were last compared (see `sync_links`).
    links_synced: Duration,
    /// The last peer failure this node saw, for the takeover timeline.
    detected: Option<Duration>,
    /// The takeovers in progress and the last finished ones.
    timelines: Timelines,
    file_stamp: FileStamp,
    /// Where the configuration and keys a push is checked against are published
    /// (standalone with a key only).
    push_running: Option<tokio::sync::watch::Sender<push::Running>>,
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
        .links_of(&options.node)
        .map_err(|source| AgentError::Config {
            origin: options.origin.clone(),
            source,
        })?
        .to_vec();
    for warning in &config.warnings {
        warn!(%warning, "accepted, not run by the agent");
    }

    let telemetry = Arc::new(Telemetry::new());
    // Before anything else: what a crashed agent left behind must not answer for a VIP.
    let resources = Resources::open(&options.node, &config, telemetry.clone(), options.start)
        .await
        .map_err(AgentError::Vip)?;

    let mut sockets = Vec::with_capacity(me.len());
    for &addr in &me {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| AgentError::Bind { addr, source })?;
        sockets.push(Arc::new(socket));
    }
    if let Some(addr) = options.metrics_addr {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::Metrics { addr, source })?;
        info!(%addr, "serving /metrics, /healthz, /readyz, /state");
        tokio::spawn(http::serve(listener, telemetry.clone()));
    }
    let (config_path, file_stamp, key_files) = match file {
        Some((path, stamp, keys)) => (Some(path), Some(stamp), keys),
        None => (None, None, None),
    };
    let (push_running, mut pushes) = match (&config_path, options.accept_pushes) {
        (Some(path), true) => {
            let running = push::Running::of(&config, options.keys.clone());
            let (running, pushes) =
                push::listen(&me, &options.node, path, running, telemetry.clone()).await?;
            (Some(running), Some(pushes))
        }
        (Some(_), false) => {
            info!("not accepting configuration pushes: no heartbeat key (--insecure-no-auth)");
            (None, None)
        }
        (None, _) => (None, None),
    };
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
        witness_ref(&config),
        EngineConfig::for_model(&config.model),
        options.keys,
        incarnation,
        start.elapsed(),
        wall,
    );
    let report_every = options.backend.report_every();
    let mut updates = options.updates;
    let mut agent = Agent {
        node: options.node,
        config_path,
        key_files,
        backend: options.backend,
        owned: BTreeMap::new(),
        hooks: BTreeMap::new(),
        report_due: true,
        config_deleted: false,
        peers: Vec::new(),
        send_failing: BTreeSet::new(),
        config,
        engine,
        sockets: sockets.clone(),
        resources,
        telemetry,
        start,
        followups: VecDeque::new(),
        counters: Counters::default(),
        links: BTreeMap::new(),
        links_synced: Duration::ZERO,
        detected: None,
        timelines: Timelines::default(),
        file_stamp: file_stamp.flatten(),
        push_running,
    };
    agent.apply_peers();
    agent.apply_hooks();
    info!(
        addresses = ?me,
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
    // The link whose socket is read first next; it rotates so that a busy link
    // cannot starve the others.
    let mut first_link = 0;
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
            (link, received) = recv_any(&sockets, &mut buf, first_link) => {
                // Also after an error: a link that keeps failing must not hide the others.
                first_link = (link + 1) % sockets.len();
                match received {
                    Ok(n) => agent.step(Input::Datagram { bytes: &buf[..n], link }).await,
                    Err(error) => {
                        warn!(link, %error, "heartbeat socket receive failed");
                        // Never spin on a persistent error.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
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
            pushed = next_update(&mut pushes) => match pushed {
                Some(pushed) => agent.pushed(pushed).await,
                None => {
                    warn!("configuration push listener ended; pushes are no longer taken");
                    pushes = None;
                }
            },
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
            change = agent.resources.changed() => match change {
                // A VIP's interface went down or came back: tell the engine at once.
                Change::Links => agent.check_eligibility().await,
                Change::Report(event) => agent.resource_event(event).await,
            },
            _ = recheck.tick() => {
                agent.resources.forget_failed_starts();
                agent.check_eligibility().await;
            }
        }
        // Every change is reported at once (the backend spaces its writes), and
        // `/state` shows the same report.
        if agent.report_due && report_every.is_some() {
            agent.report_due = false;
            let report = (!agent.config_deleted).then(|| agent.report());
            agent
                .telemetry
                .set_state(report.as_ref().map(|r| AgentState {
                    cluster: agent.config.model.cluster.clone(),
                    node: agent.node.clone(),
                    report: r.node_report(),
                }));
            agent.backend.report(report);
        }
    }
    agent.resources.shutdown(&agent.config).await;
    Ok(())
}

/// Receives the next datagram on any of the link sockets, trying them from `first`
/// on: the link it arrived on and its length. Polls every socket in one future,
/// so the event loop waits on all links at once without a task per link.
async fn recv_any(
    sockets: &[Arc<UdpSocket>],
    buf: &mut [u8],
    first: usize,
) -> (usize, std::io::Result<usize>) {
    std::future::poll_fn(|cx| {
        for k in 0..sockets.len() {
            let link = (first + k) % sockets.len();
            let mut read = ReadBuf::new(&mut *buf);
            if let Poll::Ready(result) = sockets[link].poll_recv_from(cx, &mut read) {
                return Poll::Ready((link, result.map(|_from| read.filled().len())));
            }
        }
        Poll::Pending
    })
    .await
}

/// The next message of a channel, or never when there is no channel.
async fn next_update<T>(updates: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match updates {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Agent {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Checks every group against this node's resources and tells the engine.
    async fn check_eligibility(&mut self) {
        self.resources.check_eligibility(&self.config).await;
        let unable = self.resources.unable();
        self.step(Input::Unable { groups: unable }).await;
    }

    async fn leave(&mut self, deadline: &mut Option<Duration>) {
        if deadline.is_some() {
            info!("second stop signal: still handing groups over");
            return;
        }
        let limit = self.config.model.dead_after + LEAVE_GRACE;
        info!(
            groups = self.resources.held().count(),
            "stop signal: leaving the cluster gracefully"
        );
        *deadline = Some(self.now() + limit);
        self.step(Input::Leave).await;
    }
}
