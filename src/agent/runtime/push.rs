//! The standalone agent's side of `failover config push`: a TCP listener on this
//! member's heartbeat addresses and port that takes a configuration file from an
//! admin, writes it to the agent's `--config` file and applies it like a reload.
//!
//! Owns the decision to accept or refuse a push ([`decide`], a pure function of the
//! request, the running configuration, the clock and the last accepted push), the
//! atomic write of the file, and the bounds of every connection: a few at a time,
//! each [`MAX_PUSH`] bytes at most and [`CONNECTION_TIMEOUT`] long at most, so a slow
//! or garbage client can neither fill memory nor delay heartbeats (the listener runs
//! beside the event loop, which only applies a configuration already decided and
//! written). Only an agent with a heartbeat key listens. It must never write or run
//! a configuration that does not load, names another cluster or leaves this member
//! out, and never accept a push twice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot, watch};
use tracing::{info, warn};

use super::standalone::stamp;
use super::{Agent, AgentError};
use crate::agent::metrics::Telemetry;
use crate::contract::file::write_atomically;
use crate::contract::model::{AgentConfig, hash_text};
use crate::membership::push::{
    MAX_PUSH, PushOutcome, PushReply, PushRequest, frame, frame_len, mac_of,
};
use crate::membership::{DropReason, Keyring};
use crate::telemetry::error_report;

/// How far a push's issue time may be from this member's clock.
pub const CLOCK_WINDOW_MS: u64 = 60_000;
/// The longest one connection may take, from accept to the reply sent.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handled at once; further ones are closed at once.
const MAX_CONNECTIONS: usize = 4;

/// What a push is checked against, published by the event loop whenever its
/// configuration or keys change.
#[derive(Clone, Debug)]
pub(super) struct Running {
    pub cluster: String,
    pub hash: u64,
    pub clear_failures: BTreeMap<String, String>,
    pub keys: Keyring,
}

impl Running {
    pub(super) fn of(config: &AgentConfig, keys: Keyring) -> Self {
        Running {
            cluster: config.model.cluster.clone(),
            hash: config.hash,
            clear_failures: config.clear_failures.clone(),
            keys,
        }
    }
}

/// A push accepted by [`decide`].
#[derive(Debug)]
pub(super) struct Accepted {
    pub config: AgentConfig,
    pub text: String,
    pub issued_ms: u64,
    /// [`PushOutcome::Applied`], or [`PushOutcome::Unchanged`] when this member
    /// already runs it.
    pub outcome: PushOutcome,
}

/// A push refused by [`decide`]: the reason and what to tell the admin.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refused {
    pub outcome: PushOutcome,
    pub message: String,
}

fn refuse(outcome: PushOutcome, message: impl Into<String>) -> Refused {
    Refused {
        outcome,
        message: message.into(),
    }
}

/// Whether member `node`, running `running`, takes the push `bytes` at wall time
/// `now_ms` (unix ms) when the last push it accepted (or its start) was issued at
/// `last_accepted_ms`.
pub(super) fn decide(
    bytes: &[u8],
    running: &Running,
    node: &str,
    now_ms: u64,
    last_accepted_ms: u64,
) -> Result<Accepted, Refused> {
    let request =
        PushRequest::decode(bytes, &running.cluster, &running.keys).map_err(|drop| match drop {
            DropReason::BadMac => refuse(
                PushOutcome::BadMac,
                "not signed with this member's heartbeat key",
            ),
            DropReason::ForeignCluster => refuse(
                PushOutcome::OtherCluster,
                format!("this member runs cluster {}", running.cluster),
            ),
            other => refuse(PushOutcome::Malformed, other.to_string()),
        })?;
    if request.node != node {
        return Err(refuse(
            PushOutcome::OtherNode,
            format!("meant for {}, this member is {node}", request.node),
        ));
    }
    if request.issued_ms.abs_diff(now_ms) > CLOCK_WINDOW_MS {
        return Err(refuse(
            PushOutcome::ClockSkew,
            format!(
                "issued at {} ms, this member's clock says {now_ms} ms: more than {} s apart",
                request.issued_ms,
                CLOCK_WINDOW_MS / 1000
            ),
        ));
    }
    if request.issued_ms <= last_accepted_ms {
        return Err(refuse(
            PushOutcome::Replayed,
            format!(
                "issued at {} ms, not after the last push this member accepted or its start ({last_accepted_ms} ms)",
                request.issued_ms
            ),
        ));
    }
    let config = AgentConfig::from_yaml(&request.config)
        .map_err(|error| refuse(PushOutcome::InvalidConfig, error_report(&error)))?;
    if config.model.cluster != running.cluster {
        return Err(refuse(
            PushOutcome::ConfigOtherCluster,
            format!(
                "the configuration is of cluster {}, this member runs {}",
                config.model.cluster, running.cluster
            ),
        ));
    }
    if let Err(error) = config.links_of(node) {
        return Err(refuse(PushOutcome::NotAMember, error.to_string()));
    }
    let outcome = if config.hash == running.hash && config.clear_failures == running.clear_failures
    {
        PushOutcome::Unchanged
    } else {
        PushOutcome::Applied
    };
    Ok(Accepted {
        config,
        text: request.config,
        issued_ms: request.issued_ms,
        outcome,
    })
}

/// A configuration written by a push, for the event loop to apply; it answers with
/// the hash it runs then.
#[derive(Debug)]
pub(super) struct Pushed {
    pub config: Box<AgentConfig>,
    pub done: oneshot::Sender<u64>,
}

/// What every connection shares.
struct Server {
    node: String,
    path: PathBuf,
    running: watch::Receiver<Running>,
    /// The issue time of the last accepted push (the agent's start at first); held
    /// through a whole accept, so pushes are taken one at a time, in order.
    last_accepted_ms: Mutex<u64>,
    loop_tx: mpsc::Sender<Pushed>,
    telemetry: Arc<Telemetry>,
    slots: Arc<Semaphore>,
}

/// Binds a TCP listener on each of `addresses` (this member's heartbeat
/// addresses and port) and serves pushes for the configuration file `path` until
/// the process ends. The loop publishes its running configuration on the returned
/// sender and applies what comes out of the returned receiver.
pub(super) async fn listen(
    addresses: &[SocketAddr],
    node: &str,
    path: &Path,
    running: Running,
    telemetry: Arc<Telemetry>,
) -> Result<(watch::Sender<Running>, mpsc::Receiver<Pushed>), AgentError> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for &addr in addresses {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::PushBind { addr, source })?;
        listeners.push(listener);
    }
    let (running_tx, running_rx) = watch::channel(running);
    let (loop_tx, loop_rx) = mpsc::channel(1);
    let server = Arc::new(Server {
        node: node.to_owned(),
        path: path.to_owned(),
        running: running_rx,
        last_accepted_ms: Mutex::new(unix_ms(SystemTime::now())),
        loop_tx,
        telemetry,
        slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
    });
    info!(addresses = ?addresses, "accepting configuration pushes over TCP");
    for listener in listeners {
        tokio::spawn(accept(listener, server.clone()));
    }
    Ok((running_tx, loop_rx))
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn accept(listener: TcpListener, server: Arc<Server>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "configuration push listener: accept failed");
                // Never spin on a persistent error (e.g. out of file descriptors).
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = server.slots.clone().try_acquire_owned() else {
            warn!(%peer, "configuration push refused: {MAX_CONNECTIONS} connections already open");
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(CONNECTION_TIMEOUT, server.exchange(stream, peer)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => warn!(%peer, %error, "configuration push connection failed"),
                Err(_) => {
                    warn!(%peer, timeout = ?CONNECTION_TIMEOUT, "configuration push connection timed out")
                }
            }
        });
    }
}

impl Server {
    /// Reads one framed request, answers it and closes.
    async fn exchange(&self, mut stream: TcpStream, peer: SocketAddr) -> std::io::Result<()> {
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).await?;
        let reply = match frame_len(prefix) {
            Some(len) => {
                let mut request = vec![0u8; len];
                stream.read_exact(&mut request).await?;
                self.receive(&request, peer).await
            }
            None => {
                let running = self.running.borrow().clone();
                let refused = refuse(
                    PushOutcome::Malformed,
                    format!("larger than {MAX_PUSH} bytes"),
                );
                self.answer(&running, peer, [0; 32], running.hash, refused)
            }
        };
        stream.write_all(&frame(&reply)).await?;
        stream.shutdown().await
    }

    /// Decides on one request, writes and applies it if accepted, and returns the
    /// encoded reply.
    async fn receive(&self, bytes: &[u8], peer: SocketAddr) -> Vec<u8> {
        let mut last_accepted = self.last_accepted_ms.lock().await;
        let running = self.running.borrow().clone();
        let mac = mac_of(bytes).unwrap_or([0; 32]);
        let now_ms = unix_ms(SystemTime::now());
        let accepted = match decide(bytes, &running, &self.node, now_ms, *last_accepted) {
            Ok(accepted) => accepted,
            Err(refused) => return self.answer(&running, peer, mac, running.hash, refused),
        };
        let (text, path) = (accepted.text, self.path.clone());
        let written = tokio::task::spawn_blocking(move || write_atomically(&path, &text)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let refused = refuse(
                    PushOutcome::WriteFailed,
                    format!("{}: {}", self.path.display(), error_report(&error)),
                );
                return self.answer(&running, peer, mac, running.hash, refused);
            }
            Err(join) => {
                let refused = refuse(PushOutcome::WriteFailed, join.to_string());
                return self.answer(&running, peer, mac, running.hash, refused);
            }
        }
        *last_accepted = accepted.issued_ms;
        let (done, applied) = oneshot::channel();
        let pushed = Pushed {
            config: Box::new(accepted.config),
            done,
        };
        // The loop ends only with the process; then no hash comes back.
        let hash = match self.loop_tx.send(pushed).await {
            Ok(()) => applied.await.unwrap_or(running.hash),
            Err(_) => running.hash,
        };
        info!(
            %peer,
            outcome = accepted.outcome.label(),
            issued_ms = accepted.issued_ms,
            config_hash = %hash_text(hash),
            "configuration push accepted"
        );
        self.telemetry.metrics.config_push(accepted.outcome.label());
        self.reply(&running, mac, accepted.outcome, hash, String::new())
    }

    /// Logs and counts a refusal and returns its reply.
    fn answer(
        &self,
        running: &Running,
        peer: SocketAddr,
        mac: [u8; 32],
        hash: u64,
        refused: Refused,
    ) -> Vec<u8> {
        warn!(%peer, reason = refused.outcome.label(), message = %refused.message, "configuration push refused");
        self.telemetry.metrics.config_push(refused.outcome.label());
        self.reply(running, mac, refused.outcome, hash, refused.message)
    }

    fn reply(
        &self,
        running: &Running,
        request_mac: [u8; 32],
        outcome: PushOutcome,
        config_hash: u64,
        message: String,
    ) -> Vec<u8> {
        let reply = PushReply {
            cluster: running.cluster.clone(),
            node: self.node.clone(),
            request_mac,
            outcome,
            config_hash,
            message,
        };
        // Names come from a configuration that validated, the message is cut to
        // size: an encoding error is a bug, and the client then sees the
        // connection close without a reply.
        reply.encode(&running.keys).unwrap_or_else(|error| {
            warn!(%error, "cannot encode the configuration push reply");
            Vec::new()
        })
    }
}

impl Agent {
    /// Applies a configuration a push wrote to the file (as a reload of that file
    /// would), and answers with the hash it runs then. The file's new stamp is taken
    /// first, so the file poll does not read it again (that would be harmless: the
    /// same hash changes nothing).
    pub(super) async fn pushed(&mut self, pushed: Pushed) {
        if let Some(path) = &self.config_path {
            self.file_stamp = stamp(path);
        }
        self.apply(*pushed.config).await;
        // The listener gave up waiting (its connection timed out): nothing to tell.
        let _ = pushed.done.send(self.config.hash);
    }

    /// Tells the push listener the configuration now running.
    pub(super) fn publish_config(&self) {
        if let Some(running) = &self.push_running {
            running.send_modify(|r| {
                r.cluster.clone_from(&self.config.model.cluster);
                r.hash = self.config.hash;
                r.clear_failures.clone_from(&self.config.clear_failures);
            });
        }
    }

    /// Tells the push listener the heartbeat keys now in use.
    pub(super) fn publish_keys(&self, keys: &Keyring) {
        if let Some(running) = &self.push_running {
            running.send_modify(|r| r.keys = keys.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_000_000_000;

    fn file(cluster: &str, paused_n3: bool, with_n2: bool) -> String {
        let n2 = if with_n2 {
            "    - {node: n2, address: 10.0.0.2}\n"
        } else {
            ""
        };
        format!(
            "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: {cluster}}}
spec:
  members:
    - {{node: n1, address: 10.0.0.1}}
{n2}    - {{node: n3, address: 10.0.0.3, paused: {paused_n3}}}
    - {{node: n4, address: 10.0.0.4}}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {{name: web}}
spec:
  cluster: {cluster}
  resources:
    - name: vip
      virtualIP: {{address: 10.0.0.100/24}}
"
        )
    }

    fn keys() -> Keyring {
        Keyring::new(b"0123456789abcdef0123456789abcdef".to_vec(), None).unwrap()
    }

    fn running() -> Running {
        let config = AgentConfig::from_yaml(&file("lab", false, true)).unwrap();
        Running::of(&config, keys())
    }

    fn push(node: &str, issued_ms: u64, config: String, keys: &Keyring) -> Vec<u8> {
        PushRequest {
            cluster: "default/lab".into(),
            node: node.into(),
            issued_ms,
            config,
        }
        .encode(keys)
        .unwrap()
    }

    fn refusal(bytes: &[u8], last: u64) -> PushOutcome {
        match decide(bytes, &running(), "n2", NOW, last) {
            Ok(accepted) => panic!("accepted: {:?}", accepted.outcome),
            Err(refused) => refused.outcome,
        }
    }

    #[test]
    fn accepts_a_fresh_valid_push_for_this_member() {
        let text = file("lab", true, true);
        let accepted = decide(
            &push("n2", NOW + 5, text.clone(), &keys()),
            &running(),
            "n2",
            NOW,
            NOW - 1,
        )
        .unwrap();
        assert_eq!(accepted.outcome, PushOutcome::Applied);
        assert_eq!(accepted.text, text);
        assert_eq!(accepted.issued_ms, NOW + 5);
        assert!(
            accepted
                .config
                .model
                .members
                .iter()
                .any(|m| m.name == "n3" && m.paused)
        );
        // The running configuration again: unchanged.
        let same = decide(
            &push("n2", NOW - 59_000, file("lab", false, true), &keys()),
            &running(),
            "n2",
            NOW,
            0,
        )
        .unwrap();
        assert_eq!(same.outcome, PushOutcome::Unchanged);
    }

    #[test]
    fn a_new_clear_value_is_applied_though_the_hash_stays() {
        let text = file("lab", false, true).replace(
            "metadata: {name: web}",
            "metadata: {name: web, annotations: {failover.dev/clear-failures: \"17\"}}",
        );
        let accepted = decide(&push("n2", NOW, text, &keys()), &running(), "n2", NOW, 0).unwrap();
        assert_eq!(accepted.config.hash, running().hash);
        assert_eq!(accepted.outcome, PushOutcome::Applied);
    }

    #[test]
    fn refuses_with_a_reason_each() {
        let valid = file("lab", true, true);
        let wrong = Keyring::new(b"another key of enough length!!!!".to_vec(), None).unwrap();
        assert_eq!(
            refusal(&push("n2", NOW, valid.clone(), &wrong), 0),
            PushOutcome::BadMac
        );
        assert_eq!(refusal(b"garbage", 0), PushOutcome::Malformed);
        let other = PushRequest {
            cluster: "default/other".into(),
            node: "n2".into(),
            issued_ms: NOW,
            config: valid.clone(),
        }
        .encode(&keys())
        .unwrap();
        assert_eq!(refusal(&other, 0), PushOutcome::OtherCluster);
        assert_eq!(
            refusal(&push("n1", NOW, valid.clone(), &keys()), 0),
            PushOutcome::OtherNode
        );
        for skewed in [NOW - CLOCK_WINDOW_MS - 1, NOW + CLOCK_WINDOW_MS + 1] {
            assert_eq!(
                refusal(&push("n2", skewed, valid.clone(), &keys()), 0),
                PushOutcome::ClockSkew
            );
        }
        // Not newer than the last accepted push: the same one again, or an older one.
        assert_eq!(
            refusal(&push("n2", NOW, valid.clone(), &keys()), NOW),
            PushOutcome::Replayed
        );
        assert_eq!(
            refusal(&push("n2", NOW - 1, valid.clone(), &keys()), NOW),
            PushOutcome::Replayed
        );
        assert_eq!(
            refusal(&push("n2", NOW, "kind: [".into(), &keys()), 0),
            PushOutcome::InvalidConfig
        );
        let invalid = valid.replace("10.0.0.100/24", "10.0.0.100/99");
        assert_eq!(
            refusal(&push("n2", NOW, invalid, &keys()), 0),
            PushOutcome::InvalidConfig
        );
        assert_eq!(
            refusal(&push("n2", NOW, file("elsewhere", false, true), &keys()), 0),
            PushOutcome::ConfigOtherCluster
        );
        assert_eq!(
            refusal(&push("n2", NOW, file("lab", false, false), &keys()), 0),
            PushOutcome::NotAMember
        );
    }

    /// A real listener on loopback: garbage is answered `malformed`, an idle
    /// connection does not hold up a valid push, which is written and handed to
    /// the loop (here a task standing in for it), whose hash comes back.
    #[tokio::test]
    async fn the_listener_answers_garbage_and_serves_beside_an_idle_client() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("failover-push-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cluster.yaml");
        std::fs::write(&path, file("lab", false, true)).unwrap();
        let telemetry = Arc::new(Telemetry::new());
        let (_running, mut pushes) = listen(&[addr], "n2", &path, running(), telemetry.clone())
            .await
            .unwrap();
        // The listener refuses what was issued at or before its start (ms).
        let listening_since = unix_ms(SystemTime::now());
        tokio::spawn(async move {
            while let Some(pushed) = pushes.recv().await {
                let _ = pushed.done.send(pushed.config.hash);
            }
        });
        let exchange = |bytes: Vec<u8>| async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(&bytes).await.unwrap();
            let mut prefix = [0u8; 4];
            stream.read_exact(&mut prefix).await.unwrap();
            let mut reply = vec![0u8; frame_len(prefix).unwrap()];
            stream.read_exact(&mut reply).await.unwrap();
            PushReply::decode(&reply, "default/lab", &keys()).unwrap()
        };

        let reply = exchange(u32::MAX.to_be_bytes().to_vec()).await;
        assert_eq!(reply.outcome, PushOutcome::Malformed);
        let _idle = TcpStream::connect(addr).await.unwrap();
        let text = file("lab", true, true);
        let now = unix_ms(SystemTime::now()).max(listening_since + 1);
        let request = push("n2", now, text.clone(), &keys());
        let reply = exchange(frame(&request)).await;
        assert_eq!(reply.outcome, PushOutcome::Applied, "{}", reply.message);
        assert_eq!(Some(reply.request_mac), mac_of(&request));
        assert_eq!(
            reply.config_hash,
            AgentConfig::from_yaml(&text).unwrap().hash
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // The same request again is a replay.
        let reply = exchange(frame(&request)).await;
        assert_eq!(reply.outcome, PushOutcome::Replayed);
        let metrics = telemetry.metrics.render();
        for outcome in ["malformed", "applied", "replayed"] {
            assert!(
                metrics.contains(&format!(
                    "failover_config_push_total{{outcome=\"{outcome}\"}} 1"
                )),
                "{metrics}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
