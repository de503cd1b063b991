//! The node-side echo responder: answers each probe datagram `"<seq>"` with
//! `"<seq> <node name>"`, so the probe knows which node holds the VIP. As the
//! service of a resource group (the service scenarios) it also answers HTTP health
//! checks, and a marker file makes it start broken: running, answering nothing.
//!
//! Owns: one UDP socket bound to 0.0.0.0 (it answers on whatever VIP the node holds)
//! and, when asked, one TCP listener for health checks.
//! Must never: run past its deadline or stop on a malformed datagram.

use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use super::LabError;

/// The answer to `request` from node `name`; `None` for a datagram that is not a
/// probe request (a decimal sequence number).
pub fn answer(request: &[u8], name: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(request).ok()?.trim();
    let seq: u64 = text.parse().ok()?;
    Some(format!("{seq} {name}").into_bytes())
}

/// What the echo serves besides the probes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Service<'a> {
    /// Answer every connection on this TCP port with `HTTP/1.0 200 OK`.
    pub http_port: Option<u16>,
    /// When this file exists at start, serve nothing until the deadline: a service
    /// that runs but is broken.
    pub broken_if: Option<&'a Path>,
}

/// Answers probes on `port` (and health checks, see [`Service`]) until `max` has
/// passed; returns how many probes were answered.
pub fn run(port: u16, name: &str, max: Duration, service: Service<'_>) -> Result<u64, LabError> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(LabError::Invalid {
            what: "node name".into(),
            detail: format!("{name:?} (non-empty, no spaces)"),
        });
    }
    let deadline = Instant::now() + max;
    if service.broken_if.is_some_and(Path::exists) {
        // Broken: alive, holding nothing, answering nothing.
        std::thread::sleep(max);
        return Ok(0);
    }
    if let Some(http_port) = service.http_port {
        let listener = TcpListener::bind(("0.0.0.0", http_port))
            .map_err(|e| LabError::io(format!("TCP port {http_port}"), e))?;
        // The thread ends with the process (at the deadline, or when stopped).
        std::thread::spawn(move || serve_health(&listener));
    }
    let sock = UdpSocket::bind(("0.0.0.0", port))
        .map_err(|e| LabError::io(format!("UDP port {port}"), e))?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| LabError::io("echo socket", e))?;
    let mut buf = [0u8; 512];
    let mut answered = 0u64;
    while Instant::now() < deadline {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if let Some(reply) = answer(&buf[..n], name) {
            // A failed reply is a lost answer, which the probe measures; keep serving.
            if sock.send_to(&reply, from).is_ok() {
                answered += 1;
            }
        }
    }
    Ok(answered)
}

/// Answers every connection with a 200 and closes it (the health checks read the
/// status line only).
fn serve_health(listener: &TcpListener) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else {
            continue;
        };
        // A client that left early is its own problem; keep serving.
        let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_the_node_name() {
        assert_eq!(answer(b"17", "n2"), Some(b"17 n2".to_vec()));
        assert_eq!(answer(b"17\n", "n2"), Some(b"17 n2".to_vec()));
        assert_eq!(
            crate::lab::probe::parse_answer(&answer(b"9", "n1").unwrap()),
            Some((9, "n1".to_string()))
        );
    }

    #[test]
    fn ignores_non_requests() {
        assert_eq!(answer(b"", "n1"), None);
        assert_eq!(answer(b"hello", "n1"), None);
        assert_eq!(answer(&[0xff], "n1"), None);
    }

    #[test]
    fn echo_round_trip_on_loopback() {
        let port = {
            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let server = std::thread::spawn(move || {
            run(port, "n7", Duration::from_millis(1500), Service::default())
        });
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 64];
        let mut got = None;
        for _ in 0..10 {
            c.send_to(b"5", ("127.0.0.1", port)).unwrap();
            if let Ok(n) = c.recv(&mut buf) {
                got = Some(buf[..n].to_vec());
                break;
            }
        }
        assert_eq!(got.as_deref(), Some(&b"5 n7"[..]));
        assert!(server.join().unwrap().unwrap() >= 1);
    }
}
