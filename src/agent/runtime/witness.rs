//! The witness client of both modes: asks `failover witness` (at `spec.witness`)
//! for the witness vote of a two-node cluster. Standalone it is the only witness;
//! the Kubernetes mode uses it when the configuration names `spec.witness` and the
//! API server's witness Lease otherwise. During a change of witness the engine asks
//! the old and the new witness apart (`engine::witnesses`); this client asks the
//! address it is given.
//!
//! Owns the request's sequence numbers, the boot it last learned of each witness
//! and the exchange: a fresh UDP socket connected to the witness per request, a reply
//! accepted only when it authenticates and echoes the request's nonce, the whole
//! exchange bounded by min(`deadAfter`, 2 s). The answer goes back to the loop as an
//! [`Input::Witness`] in the loop's local time. It must never block the loop and
//! never claim more than the witness granted: the hold counts from when the request
//! left ([`witness_held_until`]), a refusal from when its reply arrived.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, warn};

use super::backend::{Update, WitnessAsk};
use crate::api::duration::whole_seconds_up;
use crate::contract::model::AgentConfig;
use crate::engine::{Input, WitnessRef, witness_held_until};
use crate::membership::witness::{Verdict, WitnessReply, WitnessRequest};
use crate::membership::{EncodeError, Keyring};
use crate::placement::QuorumMode;
use crate::telemetry::error_report;

/// The longest a witness exchange may take; shorter when `deadAfter` is.
const TIMEOUT_MAX: Duration = Duration::from_secs(2);
/// A reply is at most this large.
const RECV_BUFFER: usize = 1024;

/// Why a witness request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum WitnessClientError {
    #[error("asked for the witness Lease, which only the Kubernetes mode has")]
    NoWitness,
    #[error("cannot encode the witness request")]
    Encode(#[source] EncodeError),
    #[error("cannot reach the witness at {addr}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot draw a nonce")]
    Random(#[source] getrandom::Error),
    #[error("the witness at {addr} did not answer within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("the witness at {addr} answered for another boot twice")]
    Restarted { addr: SocketAddr },
}

/// What one request needs, copied out of the loop's state.
struct Exchange {
    addr: SocketAddr,
    cluster: String,
    node: String,
    keys: Keyring,
    incarnation: u64,
    /// The hold asked for: `deadAfter` rounded up to whole seconds, as the
    /// Kubernetes mode's witness Lease.
    duration: Duration,
    timeout: Duration,
}

/// The witness client of one agent run.
pub struct WitnessClient {
    updates: mpsc::Sender<Update>,
    /// The origin of the loop's local time.
    start: Instant,
    /// The last sequence number used (strictly increasing within the incarnation).
    seq: Arc<AtomicU64>,
    /// What it knows of each witness asked: during a change two are asked, each
    /// with its own boot and its own failures.
    known: Arc<Mutex<BTreeMap<WitnessRef, Known>>>,
}

/// What the client knows of one witness.
#[derive(Clone, Copy, Debug, Default)]
struct Known {
    /// Its boot last learned (0: none yet).
    boot: u64,
    /// Its last request failed: while it stays unreachable, each further failure is
    /// a debug line, not one warning per interval.
    failing: bool,
}

/// Reads or changes what is known of `witness`. A poisoned map only means another
/// request panicked while holding it; what it holds is still right.
fn with_known<T>(
    known: &Mutex<BTreeMap<WitnessRef, Known>>,
    witness: WitnessRef,
    change: impl FnOnce(&mut Known) -> T,
) -> T {
    let mut known = known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    change(known.entry(witness).or_default())
}

impl WitnessClient {
    pub fn new(updates: mpsc::Sender<Update>, start: Instant) -> Self {
        WitnessClient {
            updates,
            start,
            seq: Arc::default(),
            known: Arc::default(),
        }
    }

    /// Spawns the request; its answer comes back as an [`Update::Engine`].
    pub fn request(&self, ask: &WitnessAsk<'_>) {
        let model = &ask.config.model;
        let witness = ask.witness;
        let address = match witness {
            WitnessRef::Process(addr) => Some(addr),
            WitnessRef::Lease => None,
        };
        let exchange = address.map(|addr| Exchange {
            addr,
            cluster: model.cluster.clone(),
            node: ask.node.to_owned(),
            keys: ask.keys.clone(),
            incarnation: ask.incarnation,
            duration: Duration::from_secs(whole_seconds_up(model.dead_after)),
            timeout: model.dead_after.min(TIMEOUT_MAX),
        });
        let (updates, start) = (self.updates.clone(), self.start);
        let (seq, known) = (self.seq.clone(), self.known.clone());
        tokio::spawn(async move {
            let answer = match exchange {
                Some(exchange) => {
                    let timeout = exchange.timeout;
                    let addr = exchange.addr;
                    tokio::time::timeout(timeout, exchange.run(start, &seq, &known))
                        .await
                        .unwrap_or(Err(WitnessClientError::Timeout { addr, timeout }))
                }
                None => Err(WitnessClientError::NoWitness),
            };
            let failed = answer.is_err();
            let was_failing = with_known(&known, witness, |k| {
                std::mem::replace(&mut k.failing, failed)
            });
            let (held_until, other_until) = answer.unwrap_or_else(|error| {
                if was_failing {
                    debug!(%witness, error = %error_report(&error), "witness request failed again");
                } else {
                    warn!(%witness, error = %error_report(&error), "witness request failed (further failures in a row are debug lines)");
                }
                (None, None)
            });
            let input = Input::Witness {
                witness,
                held_until,
                other_until,
            };
            if was_failing && !failed {
                info!(%witness, "witness answers again");
            }
            debug!(?input, "witness answer");
            let _ = updates.send(Update::Engine(input)).await;
        }
        // Its log lines carry the agent's cluster and node.
        .in_current_span());
    }
}

/// The witness a configuration names, for the engine: with witness quorum,
/// `failover witness` at `spec.witness`, else (Kubernetes mode only; the standalone
/// configuration requires `spec.witness`) the witness Lease; `None` without witness
/// quorum.
pub(super) fn witness_ref(config: &AgentConfig) -> Option<WitnessRef> {
    (config.model.quorum == QuorumMode::Witness).then(|| {
        config
            .witness
            .map_or(WitnessRef::Lease, WitnessRef::Process)
    })
}

impl Exchange {
    /// Asks; when the witness names another boot (its restart, or our first
    /// request), learns it and asks once more. The answer: held until, or refused
    /// until (local times).
    async fn run(
        &self,
        start: Instant,
        seq: &AtomicU64,
        known: &Mutex<BTreeMap<WitnessRef, Known>>,
    ) -> Result<(Option<Duration>, Option<Duration>), WitnessClientError> {
        let witness = WitnessRef::Process(self.addr);
        let boot = || with_known(known, witness, |k| k.boot);
        let io = |source| WitnessClientError::Io {
            addr: self.addr,
            source,
        };
        let local: SocketAddr = if self.addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(io)?;
        socket.connect(self.addr).await.map_err(io)?;
        for _ in 0..2 {
            let mut nonce = [0u8; 8];
            getrandom::fill(&mut nonce).map_err(WitnessClientError::Random)?;
            let request = WitnessRequest {
                cluster: self.cluster.clone(),
                node: self.node.clone(),
                nonce: u64::from_be_bytes(nonce),
                boot: boot(),
                incarnation: self.incarnation,
                seq: seq.fetch_add(1, Ordering::Relaxed) + 1,
                duration_ms: u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            };
            let bytes = request
                .encode(&self.keys)
                .map_err(WitnessClientError::Encode)?;
            let sent = start.elapsed();
            socket.send(&bytes).await.map_err(io)?;
            let reply = self.reply(&socket, &request).await.map_err(io)?;
            let received = start.elapsed();
            let ms = Duration::from_millis(reply.ms);
            let input = match reply.verdict {
                Verdict::OtherBoot => {
                    debug!(boot = reply.boot, "witness boot learned; asking again");
                    with_known(known, witness, |k| k.boot = reply.boot);
                    continue;
                }
                Verdict::Granted => (Some(witness_held_until(sent, ms.min(self.duration))), None),
                Verdict::Held { holder } => {
                    debug!(%holder, left = ?ms, "witness vote held by the other node");
                    (None, Some(received + ms))
                }
                Verdict::Restarting => {
                    debug!(left = ?ms, "witness restarted recently; it grants nothing yet");
                    (None, Some(received + ms))
                }
            };
            return Ok(input);
        }
        Err(WitnessClientError::Restarted { addr: self.addr })
    }

    /// The first datagram that authenticates as the reply to `request`; others
    /// (a late reply to an earlier request, garbage) are skipped with a debug line.
    async fn reply(
        &self,
        socket: &UdpSocket,
        request: &WitnessRequest,
    ) -> std::io::Result<WitnessReply> {
        let mut buf = [0u8; RECV_BUFFER];
        loop {
            let n = socket.recv(&mut buf).await?;
            match WitnessReply::decode(&buf[..n], &self.cluster, &self.keys) {
                Ok(reply) if reply.nonce == request.nonce && reply.node == request.node => {
                    return Ok(reply);
                }
                Ok(_) => debug!("witness reply to another request skipped"),
                Err(reason) => debug!(%reason, "witness reply dropped"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::model::AgentConfig;
    use crate::witness::server::{WitnessOptions, serve};

    fn config(port: u16) -> AgentConfig {
        AgentConfig::from_yaml(&format!(
            "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {{name: pair}}
spec:
  members:
    - {{node: a, address: 127.0.0.1}}
    - {{node: b, address: 127.0.0.2}}
  quorum: witness
  witness: {{address: 127.0.0.1, port: {port}}}
  heartbeat: {{interval: 100ms, deadAfter: 500ms}}
"
        ))
        .unwrap()
    }

    async fn answer(rx: &mut mpsc::Receiver<Update>) -> (Option<Duration>, Option<Duration>) {
        match rx.recv().await {
            Some(Update::Engine(Input::Witness {
                held_until,
                other_until,
                ..
            })) => (held_until, other_until),
            other => panic!("expected a witness answer, got {other:?}"),
        }
    }

    /// Against a real `failover witness` on localhost: the first request learns the
    /// boot and is refused within the restart hold (1 s: deadAfter rounded up), the
    /// one after it is granted, and the other member is then refused with the time
    /// left.
    #[tokio::test]
    async fn a_real_witness_holds_back_after_its_start_then_grants_one_member() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let keys = Keyring::new(vec![7; 32], None).unwrap();
        let witness = tokio::spawn(serve(
            WitnessOptions {
                listen: SocketAddr::from(([127, 0, 0, 1], port)),
                cluster: "default/pair".into(),
                keys: keys.clone(),
                key_files: None,
                metrics_addr: None,
            },
            std::future::pending(),
        ));
        // Let it bind before the first request.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let config = config(port);
        let start = Instant::now();
        let ask = |node| WitnessAsk {
            witness: witness_ref(&config).unwrap(),
            config: &config,
            node,
            incarnation: 1,
            keys: &keys,
        };
        let (tx, mut rx) = mpsc::channel(4);
        let a = WitnessClient::new(tx.clone(), start);
        let b = WitnessClient::new(tx, start);

        a.request(&ask("a"));
        let (held, other) = answer(&mut rx).await;
        assert_eq!(held, None, "within the restart hold");
        let retry = other.expect("the restart hold says how long");
        assert!(
            retry > start.elapsed() + Duration::from_millis(500),
            "{retry:?}"
        );
        tokio::time::sleep_until((start + retry).into()).await;

        let sent = start.elapsed();
        a.request(&ask("a"));
        let (held, other) = answer(&mut rx).await;
        let held = held.expect("granted after the restart hold");
        assert_eq!(other, None);
        // 1 s counted 1% shorter, from when the request left.
        assert!(held >= sent + Duration::from_millis(990), "{held:?}");
        assert!(
            held <= start.elapsed() + Duration::from_millis(990),
            "{held:?}"
        );

        b.request(&ask("b"));
        let (held, other) = answer(&mut rx).await;
        assert_eq!(held, None, "a holds the vote");
        let until = other.expect("refused with the time left");
        assert!(
            until > start.elapsed() + Duration::from_millis(500),
            "{until:?}"
        );
        witness.abort();
    }

    #[tokio::test]
    async fn an_unreachable_witness_is_an_empty_answer() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = config(port);
        let keys = Keyring::new(vec![7; 32], None).unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let client = WitnessClient::new(tx, Instant::now());
        client.request(&WitnessAsk {
            witness: witness_ref(&config).unwrap(),
            config: &config,
            node: "a",
            incarnation: 1,
            keys: &keys,
        });
        assert_eq!(answer(&mut rx).await, (None, None));
    }
}
