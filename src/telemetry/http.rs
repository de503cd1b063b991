//! A tiny HTTP/1.1 responder for `/metrics`, `/healthz`, `/readyz` and (the agent
//! only) `/state` on a tokio TcpListener: one request per connection,
//! `Connection: close`. The agent and the operator both serve through it, each with
//! its own [`Endpoints`] (`agent::metrics::Telemetry`, `operator::metrics::Metrics`).
//!
//! Owns request parsing and the routes. It must never block the agent's event loop
//! (every connection runs in its own task with a deadline), never read more than a
//! small bounded request head, and never panic on what a client sends.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

/// What a process shows on the three paths.
pub trait Endpoints: Send + Sync + 'static {
    /// The OpenMetrics text of `/metrics`.
    fn metrics_text(&self) -> String;
    /// Whether `/readyz` answers 200.
    fn ready(&self) -> bool;
    /// The body words of `/readyz` when ready and when not.
    fn readiness_words(&self) -> (&'static str, &'static str) {
        ("ready", "not ready")
    }
    /// What `/state` shows.
    fn state(&self) -> State {
        State::NotServed
    }
}

/// The answer of `/state`: a process's own view as a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// This process has no state to show (404, as any unknown path).
    NotServed,
    /// Not yet (503): the agent has made no report (it is starting, or its
    /// configuration was deleted), or its report was larger than a reader accepts.
    Unavailable(&'static str),
    /// The document (200).
    Json(String),
}

/// Largest request head read; anything longer is answered 431.
const MAX_HEAD: usize = 8 * 1024;
/// A client gets this long to send its request and read the answer.
const DEADLINE: Duration = Duration::from_secs(5);

const METRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";
const JSON_TYPE: &str = "application/json";

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Response {
            status,
            content_type: TEXT_TYPE,
            body: format!("{body}\n"),
        }
    }

    /// The response as bytes on the wire.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "",
        };
        let mut bytes = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// The answer to a request head (request line and headers, without the body).
pub fn respond(head: &[u8], endpoints: &dyn Endpoints) -> (Response, bool) {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return (Response::text(400, "bad request"), false);
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return (Response::text(400, "bad request"), false);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return (Response::text(405, "only GET and HEAD"), false);
    }
    let path = target.split('?').next().unwrap_or_default();
    let (ready_word, unready_word) = endpoints.readiness_words();
    let response = match path {
        "/metrics" => Response {
            status: 200,
            content_type: METRICS_TYPE,
            body: endpoints.metrics_text(),
        },
        "/healthz" => Response::text(200, "ok"),
        "/readyz" if endpoints.ready() => Response::text(200, ready_word),
        "/readyz" => Response::text(503, unready_word),
        "/state" => match endpoints.state() {
            State::Json(body) => Response {
                status: 200,
                content_type: JSON_TYPE,
                body,
            },
            State::Unavailable(why) => Response::text(503, why),
            State::NotServed => not_found(),
        },
        _ => not_found(),
    };
    (response, head_only)
}

fn not_found() -> Response {
    Response::text(404, "not found; try /metrics, /healthz or /readyz")
}

/// Serves connections until the task is dropped.
pub async fn serve<E: Endpoints>(listener: TcpListener, endpoints: Arc<E>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let endpoints = endpoints.clone();
                tokio::spawn(async move {
                    if let Err(error) =
                        tokio::time::timeout(DEADLINE, handle(stream, endpoints.as_ref())).await
                    {
                        debug!(%peer, %error, "HTTP client too slow");
                    }
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                debug!(%error, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut stream: TcpStream, endpoints: &dyn Endpoints) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_HEAD {
            break false;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    };
    let bytes = if complete {
        let (response, head_only) = respond(&head, endpoints);
        response.to_bytes(head_only)
    } else {
        Response::text(431, "request head too large").to_bytes(false)
    };
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Endpoints with a fixed metrics text and a readiness the test sets.
    #[derive(Default)]
    struct Fixed {
        ready: AtomicBool,
    }

    impl Endpoints for Fixed {
        fn metrics_text(&self) -> String {
            "fixed_quorum 1\n# EOF\n".to_owned()
        }

        fn ready(&self) -> bool {
            self.ready.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn routes() {
        let t = Fixed::default();
        let get = |path: &str| {
            respond(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                &t,
            )
            .0
        };
        assert_eq!(get("/healthz").status, 200);
        assert_eq!(get("/readyz").status, 503);
        t.ready.store(true, Ordering::Relaxed);
        let ready = get("/readyz");
        assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
        let metrics = get("/metrics?x=1");
        assert_eq!(metrics.status, 200);
        assert_eq!(metrics.content_type, METRICS_TYPE);
        assert_eq!(metrics.body, "fixed_quorum 1\n# EOF\n");
        assert_eq!(get("/").status, 404);
        // Only a process that has a state serves it.
        assert_eq!(get("/state").status, 404);
        assert_eq!(respond(b"POST /metrics HTTP/1.1\r\n\r\n", &t).0.status, 405);
        assert_eq!(respond(b"garbage\r\n\r\n", &t).0.status, 400);
        assert_eq!(respond(b"GET / HTTP/1.1 extra\r\n\r\n", &t).0.status, 400);
        assert_eq!(respond(&[0xff, 0xfe, b'\n'], &t).0.status, 400);
        let (head, head_only) = respond(b"HEAD /healthz HTTP/1.0\r\n\r\n", &t);
        assert!(head_only);
        let wire = String::from_utf8(head.to_bytes(true)).unwrap();
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{wire}");
        assert!(wire.contains("Content-Length: 3\r\n"), "{wire}");
        assert!(wire.ends_with("\r\n\r\n"), "{wire}");
    }

    async fn fetch(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Arc::new(Fixed::default())));

        let out = fetch(addr, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert_eq!(body, "fixed_quorum 1\n# EOF\n");

        let out = fetch(addr, b"GET /readyz HTTP/1.1\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 503 "), "{out}");

        // A head that never ends is cut off, not buffered forever. (Exactly one byte
        // over, so the server has read everything and its close sends no reset.)
        let out = fetch(addr, &[b'a'; MAX_HEAD + 1]).await;
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        server.abort();
    }
}
