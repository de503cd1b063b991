//! The IO shell of `failover witness`: one UDP socket, the [`Witness`] decision,
//! its metrics and its logs.
//!
//! Owns the socket, the witness's boot number and time, and what it counts. Every
//! datagram that fails a check (size, framing, cluster, MAC, boot, freshness) is
//! counted by reason and answered with nothing; the first of each reason in a
//! minute is a warning, the rest debug lines, so a flood cannot flood the log. It
//! must never panic on a datagram and never hold anything itself: it only votes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info, info_span, warn};

use super::{Decision, Witness};
use crate::keyfile::KeyFiles;
use crate::membership::witness::{Verdict, WitnessReply, WitnessRequest};
use crate::membership::{DropReason, Keyring};
use crate::telemetry::error_report;
use crate::telemetry::http::{self, Endpoints};

/// A datagram larger than this is no witness request (they are under 350 bytes).
const RECV_BUFFER: usize = 2048;
/// The first drop of a reason within this period is a warning, the others debug.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How often an expired hold is noticed without a request (for the log and gauge).
const EXPIRY_CHECK: Duration = Duration::from_millis(250);

/// What `failover witness` needs.
#[derive(Debug)]
pub struct WitnessOptions {
    /// The UDP address to answer on.
    pub listen: SocketAddr,
    /// The cluster id the agents use (`namespace/name`).
    pub cluster: String,
    pub keys: Keyring,
    /// The files `keys` were read from, read again on SIGHUP (a key rotation);
    /// `None` when the witness runs without authentication.
    pub key_files: Option<KeyFiles>,
    /// Where to serve /metrics, /healthz, /readyz; `None` disables.
    pub metrics_addr: Option<SocketAddr>,
}

/// Why the witness could not start.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("cannot bind UDP {addr}")]
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
    #[error("cannot draw the witness boot number")]
    Random(#[source] getrandom::Error),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabel {
    answer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

/// The witness's metrics. Node labels come only from authenticated requests, so
/// they are bounded by the members that hold the key.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    answers: Family<AnswerLabel, Counter>,
    dropped: Family<ReasonLabel, Counter>,
    holder: Family<NodeLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("failover_witness");
        let m = Metrics {
            registry: Registry::default(),
            answers: Family::default(),
            dropped: Family::default(),
            holder: Family::default(),
        };
        registry.register(
            "answers",
            "Requests answered, by answer: granted, held (refused: another node holds the vote), restarting (refused: within the restart hold), other_boot (asked to repeat with the current boot)",
            m.answers.clone(),
        );
        for reason in DropReason::ALL {
            m.dropped
                .get_or_create(&ReasonLabel {
                    reason: reason.label(),
                })
                .get();
        }
        registry.register(
            "dropped",
            "Datagrams dropped unanswered, by reason (malformed, bad_mac, foreign_cluster, replayed, ...)",
            m.dropped.clone(),
        );
        registry.register(
            "holder",
            "1 for the node that holds the witness vote, 0 for nodes that held it before",
            m.holder.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    fn answer(&self, answer: &'static str) {
        self.answers.get_or_create(&AnswerLabel { answer }).inc();
    }

    fn dropped(&self, reason: DropReason) {
        self.dropped
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    fn holder(&self, previous: Option<&str>, holder: Option<&str>) {
        for (node, value) in [(previous, 0), (holder, 1)] {
            if let Some(node) = node {
                self.holder
                    .get_or_create(&NodeLabel {
                        node: node.to_owned(),
                    })
                    .set(value);
            }
        }
    }
}

impl Endpoints for Metrics {
    fn metrics_text(&self) -> String {
        self.render()
    }

    /// The witness is ready once it listens: it answers every request from then on.
    fn ready(&self) -> bool {
        true
    }
}

/// The witness's state around the decision.
struct Server {
    cluster: String,
    keys: Keyring,
    key_files: Option<KeyFiles>,
    /// Random per start, never 0 (0 is "none" in a request).
    boot: u64,
    start: Instant,
    witness: Witness,
    metrics: Arc<Metrics>,
    /// The holder last logged and shown in the gauge.
    shown: Option<String>,
    /// When each drop reason was last logged as a warning.
    warned: BTreeMap<DropReason, Instant>,
}

impl Server {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Answers one datagram; `None`: dropped (counted and logged).
    fn handle(&mut self, bytes: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        match self.decide(bytes) {
            Ok(reply) => match reply.encode(&self.keys) {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    // The request decoded, so its names fit: a bug, not an attack.
                    warn!(error = %error_report(&error), %from, "cannot encode the reply");
                    None
                }
            },
            Err(reason) => {
                self.metrics.dropped(reason);
                let now = Instant::now();
                let due = self
                    .warned
                    .get(&reason)
                    .is_none_or(|at| now.duration_since(*at) >= WARN_EVERY);
                if due {
                    self.warned.insert(reason, now);
                    warn!(cluster = %self.cluster, %from, %reason, "witness datagram dropped (further drops of this reason within a minute are debug lines)");
                } else {
                    debug!(cluster = %self.cluster, %from, %reason, "witness datagram dropped");
                }
                None
            }
        }
    }

    fn decide(&mut self, bytes: &[u8]) -> Result<WitnessReply, DropReason> {
        let request = WitnessRequest::decode(bytes, &self.cluster, &self.keys)?;
        let mut reply = WitnessReply {
            cluster: self.cluster.clone(),
            node: request.node.clone(),
            nonce: request.nonce,
            boot: self.boot,
            verdict: Verdict::OtherBoot,
            ms: 0,
        };
        if request.boot != self.boot {
            // Also every agent's first request: it learns the boot and asks again.
            self.metrics.answer("other_boot");
            return Ok(reply);
        }
        let duration = Duration::from_millis(request.duration_ms);
        let now = self.now();
        let decision = self.witness.request(
            now,
            &request.node,
            request.incarnation,
            request.seq,
            duration,
        )?;
        (reply.verdict, reply.ms) = match decision {
            Decision::Granted { previous } => {
                self.metrics.answer("granted");
                if previous.as_deref() != Some(request.node.as_str()) {
                    debug!(node = %request.node, "witness vote granted");
                }
                (Verdict::Granted, request.duration_ms)
            }
            Decision::Held { holder, left } => {
                self.metrics.answer("held");
                debug!(node = %request.node, %holder, ?left, "witness vote refused: held");
                (Verdict::Held { holder }, millis_up(left))
            }
            Decision::Restarting { left } => {
                self.metrics.answer("restarting");
                debug!(node = %request.node, ?left, "witness vote refused: restart hold");
                (Verdict::Restarting, millis_up(left))
            }
        };
        self.show_holder();
        Ok(reply)
    }

    /// Reads the key files again (SIGHUP): a key rotation without a restart, so
    /// the holder and the boot stay. Files that cannot be read or hold a short key
    /// keep the running keys.
    fn reload_keys(&mut self) {
        let Some(files) = &self.key_files else {
            info!(cluster = %self.cluster, "SIGHUP: no key files to read (--insecure-no-auth)");
            return;
        };
        if let Some(keys) =
            info_span!("witness", cluster = %self.cluster).in_scope(|| files.reread())
        {
            self.keys = keys;
        }
    }

    /// Logs and shows a change of holder (a grant to a new node, or an expiry).
    fn show_holder(&mut self) {
        let now = self.now();
        let holder = self.witness.holder(now).map(|h| h.node.clone());
        if holder == self.shown {
            return;
        }
        match (&self.shown, &holder) {
            (previous, Some(node)) => {
                info!(cluster = %self.cluster, node = %node, previous = previous.as_deref().unwrap_or(""), "witness vote: new holder");
            }
            (Some(previous), None) => {
                info!(cluster = %self.cluster, node = %previous, "witness vote: hold expired, free");
            }
            (None, None) => {}
        }
        self.metrics
            .holder(self.shown.as_deref(), holder.as_deref());
        self.shown = holder;
    }
}

/// A refusal's time left, rounded up to whole ms so that an agent never asks early.
fn millis_up(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// Runs the witness until SIGTERM/SIGINT; SIGHUP reads the key files again.
pub async fn run(options: WitnessOptions) -> Result<(), WitnessError> {
    let mut term = signal(SignalKind::terminate()).map_err(WitnessError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(WitnessError::Signal)?;
    serve(options, async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
    .await
}

/// Answers on `options.listen` until `stop` completes; SIGHUP reads the key files
/// again. [`run`] stops on signals; a test stops it by dropping its task.
pub async fn serve(
    options: WitnessOptions,
    stop: impl Future<Output = ()>,
) -> Result<(), WitnessError> {
    let start = Instant::now();
    let mut boot = 0;
    while boot == 0 {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(WitnessError::Random)?;
        boot = u64::from_be_bytes(bytes);
    }
    let socket = UdpSocket::bind(options.listen)
        .await
        .map_err(|source| WitnessError::Bind {
            addr: options.listen,
            source,
        })?;
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = options.metrics_addr {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| WitnessError::Metrics { addr, source })?;
        info!(%addr, "serving /metrics, /healthz, /readyz");
        tokio::spawn(http::serve(listener, metrics.clone()));
    }
    let mut hangup = signal(SignalKind::hangup()).map_err(WitnessError::Signal)?;
    let mut server = Server {
        cluster: options.cluster,
        keys: options.keys,
        key_files: options.key_files,
        boot,
        start,
        witness: Witness::new(),
        metrics,
        shown: None,
        warned: BTreeMap::new(),
    };
    info!(cluster = %server.cluster, listen = %options.listen, "witness started; it grants nothing until the longest hold asked for has passed since now");
    let mut expiry = tokio::time::interval(EXPIRY_CHECK);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    if let Some(reply) = server.handle(&buf[..n], from)
                        && let Err(error) = socket.send_to(&reply, from).await
                    {
                        debug!(%from, %error, "cannot send the witness reply");
                    }
                }
                // ICMP errors of earlier replies surface here on Linux: not fatal.
                Err(error) => debug!(%error, "witness receive failed"),
            },
            _ = expiry.tick() => server.show_holder(),
            Some(()) = hangup.recv() => server.reload_keys(),
            () = &mut stop => break,
        }
    }
    info!(cluster = %server.cluster, "witness stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keyring {
        Keyring::new(b"0123456789abcdef0123456789abcdef".to_vec(), None).unwrap()
    }

    fn server() -> Server {
        Server {
            cluster: "default/pair".into(),
            keys: keys(),
            key_files: None,
            boot: 42,
            // Started long ago: past any restart hold.
            start: Instant::now() - Duration::from_secs(10),
            witness: Witness::new(),
            metrics: Arc::new(Metrics::default()),
            shown: None,
            warned: BTreeMap::new(),
        }
    }

    fn request(node: &str, boot: u64, seq: u64) -> Vec<u8> {
        WitnessRequest {
            cluster: "default/pair".into(),
            node: node.into(),
            nonce: seq * 1000,
            boot,
            incarnation: 1,
            seq,
            duration_ms: 1_000,
        }
        .encode(&keys())
        .unwrap()
    }

    fn answer(s: &mut Server, bytes: &[u8]) -> Option<WitnessReply> {
        let from: SocketAddr = "192.0.2.1:7707".parse().unwrap();
        let reply = s.handle(bytes, from)?;
        Some(WitnessReply::decode(&reply, "default/pair", &keys()).unwrap())
    }

    #[test]
    fn a_request_of_another_boot_learns_the_boot_then_is_granted() {
        let mut s = server();
        let first = answer(&mut s, &request("a", 0, 1)).unwrap();
        assert_eq!(
            (first.verdict, first.boot, first.nonce),
            (Verdict::OtherBoot, 42, 1000)
        );
        let second = answer(&mut s, &request("a", 42, 2)).unwrap();
        assert_eq!(
            (second.verdict, second.ms, second.nonce),
            (Verdict::Granted, 1000, 2000)
        );
        let other = answer(&mut s, &request("b", 42, 1)).unwrap();
        assert_eq!(other.verdict, Verdict::Held { holder: "a".into() });
        assert!(other.ms > 0 && other.ms <= 1000);
        let text = s.metrics.render();
        assert!(
            text.contains("failover_witness_holder{node=\"a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("failover_witness_answers_total{answer=\"granted\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn replays_and_garbage_are_dropped_and_counted() {
        let mut s = server();
        let granted = request("a", 42, 1);
        assert!(answer(&mut s, &granted).is_some());
        assert!(answer(&mut s, &granted).is_none());
        assert!(answer(&mut s, b"garbage").is_none());
        let text = s.metrics.render();
        assert!(
            text.contains("failover_witness_dropped_total{reason=\"replayed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("failover_witness_dropped_total{reason=\"malformed\"} 1"),
            "{text}"
        );
    }

    /// A rotation on SIGHUP: the new key is accepted at once, the previous one
    /// during the overlap, and the vote granted before it is still held.
    #[test]
    fn a_key_rotation_keeps_the_holder_and_accepts_both_keys() {
        let dir = std::env::temp_dir().join(format!("witness-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (current, previous) = (dir.join("key"), dir.join("previous"));
        let new_key = b"fedcba9876543210fedcba9876543210";
        std::fs::write(&current, b"0123456789abcdef0123456789abcdef\n").unwrap();
        let mut s = server();
        s.key_files = Some(KeyFiles {
            current: current.clone(),
            previous: None,
        });
        assert!(answer(&mut s, &request("a", 42, 1)).is_some());
        let signed_new = |node: &str, seq| {
            let request = WitnessRequest {
                cluster: "default/pair".into(),
                node: node.into(),
                nonce: seq,
                boot: 42,
                incarnation: 1,
                seq,
                duration_ms: 1_000,
            };
            request
                .encode(&Keyring::new(new_key.to_vec(), None).unwrap())
                .unwrap()
        };
        let from: SocketAddr = "192.0.2.1:7707".parse().unwrap();
        assert!(
            s.handle(&signed_new("b", 1), from).is_none(),
            "new key before the rotation"
        );

        std::fs::rename(&current, &previous).unwrap();
        std::fs::write(&current, new_key).unwrap();
        s.key_files = Some(KeyFiles {
            current: current.clone(),
            previous: Some(previous.clone()),
        });
        s.reload_keys();
        let rotated = Keyring::new(new_key.to_vec(), None).unwrap();
        let reply = s
            .handle(&signed_new("b", 2), from)
            .expect("new key accepted");
        let reply = WitnessReply::decode(&reply, "default/pair", &rotated).unwrap();
        assert_eq!(reply.verdict, Verdict::Held { holder: "a".into() });
        assert!(
            s.handle(&request("a", 42, 3), from).is_some(),
            "the previous key is accepted during the overlap"
        );

        // A file that cannot be read keeps the running keys.
        std::fs::remove_file(&current).unwrap();
        s.reload_keys();
        assert!(s.handle(&signed_new("b", 3), from).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refusals_round_up_to_whole_ms() {
        assert_eq!(millis_up(Duration::from_micros(1_001)), 2);
        assert_eq!(millis_up(Duration::from_millis(7)), 7);
    }
}
