//! Health checks the owner's agent runs against a group's service: `tcp` (a
//! connection opens), `http` (a GET answers with a status in a range) and `exec` (a
//! command exits 0), each every `interval`, each bounded by `timeout`, and reported
//! unhealthy only after `failureThreshold` failures in a row.
//!
//! Owns the decision (which results make a transition: [`Tracker`], a pure state
//! machine) and the probes' IO. A checker is its own tokio task that reports
//! transitions over a channel, so a slow or hung probe delays nothing but itself:
//! never the heartbeats. Must never decide what a failure leads to (restart or
//! failover is the caller's policy), and a probe that does not answer in time is a
//! failure, never a wait.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::process::{CommandSpec, Completion, Output, ProcessError, run_bounded};
use crate::telemetry::error_report;

/// Longest HTTP status line the probe reads before it gives up on the answer.
const MAX_STATUS_LINE: usize = 1024;

/// Why one probe failed (its text is the reason reported with an unhealthy state).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The probe did not finish within its timeout.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The host name did not resolve to any address.
    #[error("cannot resolve {host:?}")]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        #[source]
        source: std::io::Error,
    },
    /// No address of the host accepted the connection.
    #[error("cannot connect to {host}:{port}")]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The error of the last address tried.
        #[source]
        source: std::io::Error,
    },
    /// Sending the request or reading the answer failed.
    #[error("HTTP exchange with {host}:{port} failed")]
    Exchange {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// What the socket said.
        #[source]
        source: std::io::Error,
    },
    /// The answer did not start with an HTTP/1.x status line.
    #[error("not an HTTP answer: {0:?}")]
    NotHttp(String),
    /// The status is outside the healthy range.
    #[error("HTTP status {status} is outside {from}-{to}")]
    Status {
        /// The status received.
        status: u16,
        /// Lowest healthy status.
        from: u16,
        /// Highest healthy status.
        to: u16,
    },
    /// The command did not exit 0.
    #[error("command {program:?} ended with {exit}")]
    Command {
        /// The program run.
        program: String,
        /// How it ended.
        exit: super::process::Exit,
    },
    /// The command could not be started.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Healthy when a TCP connection to `host:port` opens.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// Healthy when `GET path` on `host:port` answers with a status in `statuses`.
    Http {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Request path, starting with `/`.
        path: String,
        /// Healthy statuses, e.g. 200..=399.
        statuses: RangeInclusive<u16>,
    },
    /// Healthy when the command exits 0; killed when it overruns the timeout.
    Exec(CommandSpec),
}

/// How often, how long and how many failures in a row make it unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// Longest one probe may take.
    pub timeout: Duration,
    /// Failures in a row that make the check unhealthy (at least 1).
    pub failure_threshold: u32,
}

/// What a checker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// A probe succeeded (first one, or first one after being unhealthy).
    Healthy,
    /// `failureThreshold` probes failed in a row; the reason is the last failure.
    Unhealthy {
        /// Failures in a row and the last one's error, for a person.
        reason: String,
    },
}

/// The pure decision: which probe results change the reported health.
///
/// Before the first result the health is unknown; a success reports `Healthy`
/// unless already healthy; a failure counts, and the failure that reaches the
/// threshold reports `Unhealthy` unless already unhealthy. A success resets the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    failure_threshold: u32,
    failures_in_a_row: u32,
    reported: Option<bool>,
}

impl Tracker {
    /// A tracker that turns unhealthy after `failure_threshold` failures in a row
    /// (a threshold of 0 is taken as 1).
    pub fn new(failure_threshold: u32) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            failures_in_a_row: 0,
            reported: None,
        }
    }

    /// Takes one probe result; returns the transition to report, if any.
    pub fn observe(&mut self, result: Result<(), String>) -> Option<Health> {
        match result {
            Ok(()) => {
                self.failures_in_a_row = 0;
                (self.reported != Some(true)).then(|| {
                    self.reported = Some(true);
                    Health::Healthy
                })
            }
            Err(error) => {
                self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
                (self.failures_in_a_row >= self.failure_threshold && self.reported != Some(false))
                    .then(|| {
                        self.reported = Some(false);
                        Health::Unhealthy {
                            reason: format!(
                                "{} failure(s) in a row: {error}",
                                self.failures_in_a_row
                            ),
                        }
                    })
            }
        }
    }
}

/// Reads the status code from the start of an HTTP/1.x answer.
pub fn parse_status_line(answer: &[u8]) -> Result<u16, ProbeError> {
    let line_end = answer
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(answer.len());
    let line = String::from_utf8_lossy(&answer[..line_end]);
    let not_http = || ProbeError::NotHttp(line.trim_end().chars().take(80).collect());
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(not_http());
    }
    let code = parts.next().unwrap_or_default().trim_end();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_http());
    }
    code.parse().map_err(|_| not_http())
}

/// The `Host` header value: IPv6 literals in brackets.
fn host_header(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, ProbeError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ProbeError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(ProbeError::Connect {
        host: host.to_owned(),
        port,
        source: last,
    })
}

async fn http_status(host: &str, port: u16, path: &str) -> Result<u16, ProbeError> {
    let mut stream = connect(host, port).await?;
    let exchange = |source| ProbeError::Exchange {
        host: host.to_owned(),
        port,
        source,
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: failover-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        host_header(host, port)
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(exchange)?;
    let mut answer = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !answer.contains(&b'\n') && answer.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut chunk).await.map_err(exchange)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&answer)
}

/// Runs one probe, bounded by `timeout`.
pub async fn run_probe(probe: &Probe, timeout: Duration) -> Result<(), ProbeError> {
    let bounded = |result: Result<Result<(), ProbeError>, _>| {
        result.unwrap_or(Err(ProbeError::TimedOut(timeout)))
    };
    match probe {
        Probe::Tcp { host, port } => bounded(
            tokio::time::timeout(timeout, async { connect(host, *port).await.map(drop) }).await,
        ),
        Probe::Http {
            host,
            port,
            path,
            statuses,
        } => bounded(
            tokio::time::timeout(timeout, async {
                let status = http_status(host, *port, path).await?;
                if statuses.contains(&status) {
                    Ok(())
                } else {
                    Err(ProbeError::Status {
                        status,
                        from: *statuses.start(),
                        to: *statuses.end(),
                    })
                }
            })
            .await,
        ),
        // run_bounded kills the command's process group itself when it overruns;
        // an outer timeout would only drop the wait and leave the group running.
        Probe::Exec(command) => match run_bounded(command, timeout, Output::Discard).await? {
            Completion::Exited(exit) if exit.success() => Ok(()),
            Completion::Exited(exit) => Err(ProbeError::Command {
                program: command.program().to_owned(),
                exit,
            }),
            Completion::TimedOut => Err(ProbeError::TimedOut(timeout)),
        },
    }
}

/// A running checker task; dropping the handle stops it.
#[derive(Debug)]
pub struct Checker {
    task: JoinHandle<()>,
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Checker {
    /// Starts probing at once and then every `schedule.interval`, sending each
    /// transition to `events`, made by `event`. The task ends when the handle is
    /// dropped or the receiver is gone.
    pub fn spawn<E: Send + 'static>(
        resource: String,
        probe: Probe,
        schedule: Schedule,
        events: mpsc::Sender<E>,
        event: impl Fn(Health) -> E + Send + 'static,
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut tracker = Tracker::new(schedule.failure_threshold);
            let mut ticks = tokio::time::interval(schedule.interval);
            // A probe that used its whole timeout must not be followed by a burst.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let result = run_probe(&probe, schedule.timeout).await;
                if let Err(error) = &result {
                    debug!(resource, %error, "health probe failed");
                }
                let Some(health) = tracker.observe(result.map_err(|e| error_report(&e))) else {
                    continue;
                };
                if events.send(event(health)).await.is_err() {
                    return;
                }
            }
        });
        Self { task }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// Bound of every wait in the IO tests: generous for a loaded machine.
    const BOUND: Duration = Duration::from_secs(20);

    fn fail(text: &str) -> Result<(), String> {
        Err(text.to_owned())
    }

    #[test]
    fn unhealthy_only_after_the_threshold_of_failures_in_a_row() {
        let mut t = Tracker::new(3);
        assert_eq!(t.observe(fail("a")), None);
        assert_eq!(t.observe(fail("b")), None);
        assert_eq!(
            t.observe(fail("c")),
            Some(Health::Unhealthy {
                reason: "3 failure(s) in a row: c".into()
            })
        );
        // Reported once, not on every further failure.
        assert_eq!(t.observe(fail("d")), None);
        assert_eq!(t.observe(Ok(())), Some(Health::Healthy));
        assert_eq!(t.observe(Ok(())), None);
        // A success in between resets the count.
        assert_eq!(t.observe(fail("e")), None);
        assert_eq!(t.observe(fail("f")), None);
        assert_eq!(t.observe(Ok(())), None);
        assert_eq!(t.observe(fail("g")), None);
        assert_eq!(t.observe(fail("h")), None);
        assert!(matches!(
            t.observe(fail("i")),
            Some(Health::Unhealthy { .. })
        ));
    }

    #[test]
    fn the_first_success_is_reported_and_a_zero_threshold_means_one() {
        let mut t = Tracker::new(1);
        assert_eq!(t.observe(Ok(())), Some(Health::Healthy));
        assert!(matches!(
            t.observe(fail("x")),
            Some(Health::Unhealthy { .. })
        ));
        assert_eq!(Tracker::new(0), Tracker::new(1));
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 204 No Content\r\n").unwrap(),
            204
        );
        assert_eq!(parse_status_line(b"HTTP/1.0 503\r\n").unwrap(), 503);
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK").unwrap(), 200);
        for bad in [
            &b""[..],
            b"SSH-2.0-OpenSSH\r\n",
            b"HTTP/1.1 20 OK\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"HTTP/2 200\r\n",
            b"HTTP/1.1 +20 x\r\n",
        ] {
            assert!(
                matches!(parse_status_line(bad), Err(ProbeError::NotHttp(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_host_header_brackets_ipv6_literals() {
        assert_eq!(host_header("::1", 80), "[::1]:80");
        assert_eq!(host_header("127.0.0.1", 80), "127.0.0.1:80");
    }

    /// An HTTP server on 127.0.0.1 that answers every request with `status`, or
    /// accepts and then says nothing when `status` is `None`.
    async fn http_server(status: Option<u16>) -> (u16, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                match status {
                    Some(status) => {
                        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                        let _ = stream.write_all(answer.as_bytes()).await;
                    }
                    None => held.push(stream),
                }
            }
        });
        (port, task)
    }

    fn http(port: u16, statuses: RangeInclusive<u16>) -> Probe {
        Probe::Http {
            host: "127.0.0.1".into(),
            port,
            path: "/healthz".into(),
            statuses,
        }
    }

    /// Runs a probe with `timeout`, failing the test if it overruns [`BOUND`].
    async fn probe_within(probe: &Probe, timeout: Duration) -> Result<(), ProbeError> {
        tokio::time::timeout(BOUND, run_probe(probe, timeout))
            .await
            .expect("the probe overran its timeout")
    }

    #[tokio::test]
    async fn tcp_and_http_probes_against_real_listeners() {
        let (ok, ok_server) = http_server(Some(204)).await;
        let (teapot, teapot_server) = http_server(Some(418)).await;
        let (silent, silent_server) = http_server(None).await;
        let patient = Duration::from_secs(5);

        let tcp = Probe::Tcp {
            host: "127.0.0.1".into(),
            port: ok,
        };
        probe_within(&tcp, patient).await.unwrap();
        probe_within(&http(ok, 200..=399), patient).await.unwrap();
        let refused = probe_within(&http(teapot, 200..=399), patient).await;
        assert!(
            matches!(refused, Err(ProbeError::Status { status: 418, .. })),
            "{refused:?}"
        );
        probe_within(&http(teapot, 400..=499), patient)
            .await
            .unwrap();

        // A listener that never answers: a timeout, not a stall.
        let hung = probe_within(&http(silent, 200..=399), Duration::from_millis(100)).await;
        assert!(matches!(hung, Err(ProbeError::TimedOut(_))), "{hung:?}");

        // Nobody listens on a port we just closed.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let tcp = Probe::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let refused = probe_within(&tcp, patient).await;
        assert!(
            matches!(refused, Err(ProbeError::Connect { .. })),
            "{refused:?}"
        );

        for server in [ok_server, teapot_server, silent_server] {
            server.abort();
        }
    }

    #[tokio::test]
    async fn exec_probes_exit_zero_or_fail_or_time_out() {
        let sh = |script: &str| Probe::Exec(CommandSpec::new(["sh", "-c", script]));
        let short = Duration::from_millis(300);
        probe_within(&sh("exit 0"), short).await.unwrap();
        let failed = probe_within(&sh("exit 1"), short).await;
        assert_eq!(
            failed.map_err(|e| e.to_string()),
            Err("command \"sh\" ended with exit code 1".to_owned())
        );
        let hung = probe_within(&sh("sleep 30"), short).await;
        assert!(matches!(hung, Err(ProbeError::TimedOut(_))), "{hung:?}");
    }

    async fn next(rx: &mut mpsc::Receiver<(&'static str, Health)>) -> (&'static str, Health) {
        tokio::time::timeout(BOUND, rx.recv())
            .await
            .expect("no transition within the bound")
            .expect("the checker stopped")
    }

    #[tokio::test]
    async fn a_checker_reports_transitions_over_its_channel() {
        let dir = std::env::temp_dir().join(format!("failover-checker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let flag = dir.join("healthy");
        std::fs::write(&flag, "").unwrap();
        let probe = Probe::Exec(CommandSpec::new([
            "test".to_owned(),
            "-e".to_owned(),
            flag.display().to_string(),
        ]));
        let schedule = Schedule {
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            failure_threshold: 2,
        };
        let (tx, mut rx) = mpsc::channel(4);
        let checker = Checker::spawn("check".into(), probe, schedule, tx, |h| ("check", h));
        assert_eq!(next(&mut rx).await, ("check", Health::Healthy));
        std::fs::remove_file(&flag).unwrap();
        let (resource, health) = next(&mut rx).await;
        assert_eq!(resource, "check");
        let Health::Unhealthy { reason } = health else {
            panic!("{health:?}");
        };
        assert!(
            reason.starts_with("2 failure(s) in a row: command \"test\""),
            "{reason}"
        );
        std::fs::write(&flag, "").unwrap();
        assert_eq!(next(&mut rx).await.1, Health::Healthy);
        // Dropping the handle stops the task, which closes the channel.
        drop(checker);
        assert_eq!(tokio::time::timeout(BOUND, rx.recv()).await.unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
