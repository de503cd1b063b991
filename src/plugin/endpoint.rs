//! The standalone read verbs' one request: `GET /state` from a running agent's
//! `--metrics-addr`, plain HTTP/1.1 over a tokio TcpStream (the agent answers one
//! request per connection and closes it, `telemetry::http`).
//!
//! Owns that request and what can go wrong with it. The whole exchange is bounded
//! by a timeout and the answer by [`MAX_STATE_BYTES`] plus a head, so an address
//! that is not an agent cannot hang the verb or fill its memory; it never writes
//! anything to the agent.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::contract::report::{AgentState, MAX_STATE_BYTES};

/// Longest response head read beside the body.
const MAX_HEAD: usize = 16 * 1024;

/// Why the agent's state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Nothing accepted the connection, or it broke.
    #[error(
        "cannot reach an agent at {addr} (pass --agent with the agent's --metrics-addr; is the agent running?)"
    )]
    Unreachable {
        /// `--agent`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No whole answer in time.
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout {
        /// `--agent`.
        addr: String,
        /// The bound.
        timeout: Duration,
    },
    /// The answer was not HTTP.
    #[error("{addr} does not answer HTTP: is it the agent's --metrics-addr?")]
    NotHttp {
        /// `--agent`.
        addr: String,
    },
    /// An HTTP server without `/state`.
    #[error("{addr} has no /state: it is not a failover agent, or one older than this command")]
    NoState {
        /// `--agent`.
        addr: String,
    },
    /// The agent has no report yet (503).
    #[error("the agent at {addr} has no state to show yet: {why}")]
    NotReady {
        /// `--agent`.
        addr: String,
        /// Its words.
        why: String,
    },
    /// Any other status.
    #[error("{addr} answered /state with HTTP {status}: {why}")]
    Status {
        /// `--agent`.
        addr: String,
        /// The status code.
        status: u16,
        /// The first line of the body.
        why: String,
    },
    /// Longer than any agent's state.
    #[error("the answer of {addr} is larger than {MAX_STATE_BYTES} bytes: not an agent's state")]
    TooLarge {
        /// `--agent`.
        addr: String,
    },
    /// A 200 whose body is not an agent's state.
    #[error("{addr} answered /state with something that is not an agent's state")]
    NotState {
        /// `--agent`.
        addr: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// `GET /state` from the agent at `addr` (`HOST:PORT`), within `timeout`.
pub async fn fetch_state(addr: &str, timeout: Duration) -> Result<AgentState, EndpointError> {
    match tokio::time::timeout(timeout, exchange(addr)).await {
        Ok(answer) => answer,
        Err(_) => Err(EndpointError::Timeout {
            addr: addr.to_owned(),
            timeout,
        }),
    }
}

async fn exchange(addr: &str) -> Result<AgentState, EndpointError> {
    let unreachable = |source| EndpointError::Unreachable {
        addr: addr.to_owned(),
        source,
    };
    let mut stream = TcpStream::connect(addr).await.map_err(unreachable)?;
    let request = format!(
        "GET /state HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let limit = MAX_STATE_BYTES + MAX_HEAD;
    let mut answer = Vec::new();
    // One byte over the limit tells a full answer from a longer one.
    (&mut stream)
        .take(limit as u64 + 1)
        .read_to_end(&mut answer)
        .await
        .map_err(unreachable)?;
    if answer.len() > limit {
        return Err(EndpointError::TooLarge {
            addr: addr.to_owned(),
        });
    }
    parse(addr, &answer)
}

/// The state in an HTTP answer read to its end, or what the answer is instead.
fn parse(addr: &str, answer: &[u8]) -> Result<AgentState, EndpointError> {
    let not_http = || EndpointError::NotHttp {
        addr: addr.to_owned(),
    };
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(not_http)?;
    let (head, body) = (&answer[..split], &answer[split + 4..]);
    let head = String::from_utf8_lossy(head);
    let status_line = head.lines().next().unwrap_or_default();
    let mut words = status_line.split(' ');
    let status = match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => {
            code.parse::<u16>().map_err(|_| not_http())?
        }
        _ => return Err(not_http()),
    };
    let why = || {
        String::from_utf8_lossy(body)
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>()
    };
    match status {
        200 => serde_json::from_slice(body).map_err(|source| EndpointError::NotState {
            addr: addr.to_owned(),
            source,
        }),
        404 => Err(EndpointError::NoState {
            addr: addr.to_owned(),
        }),
        503 => Err(EndpointError::NotReady {
            addr: addr.to_owned(),
            why: why(),
        }),
        status => Err(EndpointError::Status {
            addr: addr.to_owned(),
            status,
            why: why(),
        }),
    }
}
