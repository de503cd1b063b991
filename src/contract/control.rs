//! The agent's local control endpoint, as the agent serves it and as
//! `kubectl failover` (standalone) speaks to it: a Unix socket that only root can
//! open, one JSON [`Request`] line per connection, one JSON [`Reply`] line back.
//!
//! A Unix socket and not a TCP port: the file mode is the access control (pausing
//! a member is an administrator's act), and nothing listens on the network.
//!
//! Owns the socket's default path, the messages and their framing. The meaning of
//! each verb is the agent's; how they are shown is the plugin's.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::api::{FailoverClusterStatus, ResourceGroupStatus};

/// Where a standalone agent listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/failover/control.sock";

/// Longest message either side reads, newline included; a status of 64 members
/// and many groups stays well below it.
pub const MAX_MESSAGE: usize = 1024 * 1024;

/// What a client asks the agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "verb", rename_all = "camelCase")]
pub enum Request {
    /// The cluster and every group as this agent sees them.
    Status,
    /// Hand over this node's groups gracefully and own nothing until `Resume`.
    Pause { node: String },
    /// Undo `Pause`.
    Resume { node: String },
    /// Clear the failover count of a group (as the `failover.dev/clear-failures`
    /// annotation does).
    Clear { group: String },
    /// Move a group to a node.
    Move { group: String, node: String },
}

/// What the agent answers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "reply", rename_all = "camelCase")]
pub enum Reply {
    /// The answer to [`Request::Status`].
    Status(Box<StatusReply>),
    /// The request was carried out (or is under way); what happens next.
    Done { message: String },
    /// The request was not carried out, and why.
    Refused { message: String },
}

/// The cluster and its groups as one agent sees them, in the same types as the
/// custom resources' status, so one renderer shows both modes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusReply {
    /// The cluster's name.
    pub cluster: String,
    /// The node whose agent answered.
    pub node: String,
    /// Members, quorum and config hashes.
    pub cluster_status: FailoverClusterStatus,
    /// Every group of the cluster, in config order.
    pub groups: Vec<GroupReply>,
}

/// One group's name and status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupReply {
    pub name: String,
    pub status: ResourceGroupStatus,
}

/// Why a message could not be read or written.
#[derive(Debug, Error)]
pub enum ControlError {
    #[error("control socket IO: {0}")]
    Io(#[from] std::io::Error),
    #[error("control message is longer than {MAX_MESSAGE} bytes")]
    TooLong,
    #[error("control connection closed before a whole message")]
    Truncated,
    #[error("control message is not valid JSON for this version: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes one message as a JSON line.
pub async fn write_message<T: Serialize>(
    writer: &mut (impl AsyncWrite + Unpin),
    message: &T,
) -> Result<(), ControlError> {
    let mut line = serde_json::to_vec(message)?;
    if line.len() >= MAX_MESSAGE {
        return Err(ControlError::TooLong);
    }
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one JSON-line message, at most [`MAX_MESSAGE`] bytes.
pub async fn read_message<T: for<'de> Deserialize<'de>>(
    reader: impl AsyncRead + Unpin,
) -> Result<T, ControlError> {
    let mut line = Vec::new();
    let mut limited = BufReader::new(tokio::io::AsyncReadExt::take(reader, MAX_MESSAGE as u64));
    limited.read_until(b'\n', &mut line).await?;
    match line.last() {
        Some(b'\n') => Ok(serde_json::from_slice(&line)?),
        _ if line.len() >= MAX_MESSAGE => Err(ControlError::TooLong),
        _ => Err(ControlError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_and_a_reply_cross_a_socket_pair() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let request = Request::Move {
            group: "web".into(),
            node: "b".into(),
        };
        write_message(&mut client, &request).await.unwrap();
        let read: Request = read_message(&mut server).await.unwrap();
        assert_eq!(read, request);

        let reply = Reply::Refused {
            message: "no such group".into(),
        };
        write_message(&mut server, &reply).await.unwrap();
        let read: Reply = read_message(&mut client).await.unwrap();
        assert_eq!(read, reply);
    }

    #[test]
    fn the_wire_form_names_the_verb() {
        let line = serde_json::to_string(&Request::Clear {
            group: "web".into(),
        })
        .unwrap();
        assert_eq!(line, r#"{"verb":"clear","group":"web"}"#);
        let parsed: Request = serde_json::from_str(r#"{"verb":"status"}"#).unwrap();
        assert_eq!(parsed, Request::Status);
    }

    #[tokio::test]
    async fn a_message_without_its_newline_is_truncated_and_garbage_is_an_error() {
        let (mut client, server) = tokio::io::duplex(4096);
        client.write_all(br#"{"verb":"status"}"#).await.unwrap();
        drop(client);
        let read: Result<Request, _> = read_message(server).await;
        assert!(matches!(read, Err(ControlError::Truncated)), "{read:?}");

        let (mut client, server) = tokio::io::duplex(4096);
        client.write_all(b"{\"verb\":\"reboot\"}\n").await.unwrap();
        let read: Result<Request, _> = read_message(server).await;
        assert!(matches!(read, Err(ControlError::Json(_))), "{read:?}");
    }

    #[tokio::test]
    async fn an_endless_line_stops_at_the_limit() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..(MAX_MESSAGE / chunk.len() + 2) {
                if client.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let read: Result<Request, _> = read_message(server).await;
        assert!(matches!(read, Err(ControlError::TooLong)), "{read:?}");
        writer.abort();
    }
}
