//! `failover config push FILE`, and the push behind the standalone write verbs:
//! one configuration sent to every member of a standalone cluster over TCP, signed
//! with the cluster's heartbeat key (`membership::push`), each member's answer
//! collected and printed.
//!
//! Owns the client side: the local validation before anything is sent, one
//! exchange per member (concurrently, each within [`MEMBER_TIMEOUT`], trying the
//! member's `address` and then each of its `additionalAddresses`), and what it
//! prints. A member's address is only tried after the previous one refused or
//! did not accept the connection: once a request was sent, its answer (or the lack
//! of one) is that member's result. It never writes a local file; the verbs do,
//! after the push.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::contract::model::{AgentConfig, ConfigError, hash_text};
use crate::membership::push::{PushOutcome, PushReply, PushRequest, frame, frame_len, mac_of};
use crate::membership::{DropReason, EncodeError, Keyring};
use crate::telemetry::error_report;

use super::Format;

/// The bound of the whole exchange with one member, all its addresses included.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why nothing was pushed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The configuration does not load or validate: it is sent to nobody.
    #[error("{file}: not pushed: the configuration cannot run")]
    Invalid {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// The configuration does not fit in a push (or a name is too long for one).
    #[error("{file}: not pushed")]
    Encode {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: EncodeError,
    },
}

/// What one member did with the push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberResult {
    /// The member answered (applied, unchanged, or refused with a reason).
    Answered {
        outcome: PushOutcome,
        /// The configuration hash the member runs now (`None` when its reply does
        /// not authenticate, so only its refusal is known).
        config_hash: Option<u64>,
        /// Why, for a refusal.
        message: String,
    },
    /// No answer: every address, and what went wrong there.
    Unreachable { errors: Vec<String> },
}

impl MemberResult {
    /// Whether the member runs the pushed configuration.
    pub fn accepted(&self) -> bool {
        matches!(self, MemberResult::Answered { outcome, .. } if outcome.accepted())
    }
}

/// Every member's result, in the file's member order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    pub results: Vec<(String, MemberResult)>,
}

impl PushReport {
    /// Whether every member applied the configuration or already ran it.
    pub fn all_accepted(&self) -> bool {
        self.results.iter().all(|(_, r)| r.accepted())
    }

    /// Whether at least one member runs the configuration now.
    pub fn any_accepted(&self) -> bool {
        self.results.iter().any(|(_, r)| r.accepted())
    }

    /// One line per member, or a JSON list.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => {
                let width = self.results.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
                let mut text = String::new();
                for (node, result) in &self.results {
                    let line = match result {
                        MemberResult::Answered {
                            outcome: outcome @ (PushOutcome::Applied | PushOutcome::Unchanged),
                            config_hash,
                            ..
                        } => format!(
                            "{} {}",
                            outcome.label(),
                            config_hash.map_or_else(String::new, hash_text)
                        ),
                        MemberResult::Answered {
                            outcome, message, ..
                        } => format!("refused: {}: {message}", outcome.label()),
                        MemberResult::Unreachable { errors } => {
                            format!("unreachable: {}", errors.join("; "))
                        }
                    };
                    text.push_str(&format!("{node:width$}  {line}\n"));
                }
                text
            }
            Format::Json => {
                let members: Vec<MemberDocument<'_>> = self
                    .results
                    .iter()
                    .map(|(node, result)| match result {
                        MemberResult::Answered {
                            outcome,
                            config_hash,
                            message,
                        } => MemberDocument {
                            node,
                            result: if outcome.accepted() {
                                outcome.label()
                            } else {
                                "refused"
                            },
                            reason: (!outcome.accepted()).then(|| outcome.label()),
                            config_hash: config_hash.map(hash_text),
                            message: (!message.is_empty()).then_some(message.as_str()),
                            errors: Vec::new(),
                        },
                        MemberResult::Unreachable { errors } => MemberDocument {
                            node,
                            result: "unreachable",
                            reason: None,
                            config_hash: None,
                            message: None,
                            errors: errors.iter().map(String::as_str).collect(),
                        },
                    })
                    .collect();
                let mut text = serde_json::to_string_pretty(&serde_json::json!({
                    "members": members,
                    "allApplied": self.all_accepted(),
                }))
                .unwrap_or_default();
                text.push('\n');
                text
            }
        }
    }
}

/// One member in `-o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberDocument<'a> {
    node: &'a str,
    /// applied, unchanged, refused or unreachable.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<&'a str>,
}

/// Validates `text` (the file `file`) as the standalone agent would, then pushes
/// it to every member it lists, issued at `issued_ms` (unix ms).
pub async fn push(
    file: &str,
    text: &str,
    keys: &Keyring,
    issued_ms: u64,
) -> Result<PushReport, PushError> {
    let config = AgentConfig::from_yaml(text).map_err(|source| PushError::Invalid {
        file: file.to_owned(),
        source,
    })?;
    let cluster = &config.model.cluster;
    let mut exchanges = Vec::with_capacity(config.addresses.len());
    // In the file's member order, which the model keeps.
    for member in &config.model.members {
        let addresses = config
            .addresses
            .get(&member.name)
            .cloned()
            .unwrap_or_default();
        let request = PushRequest {
            cluster: cluster.clone(),
            node: member.name.clone(),
            issued_ms,
            config: text.to_owned(),
        }
        .encode(keys)
        .map_err(|source| PushError::Encode {
            file: file.to_owned(),
            source,
        })?;
        exchanges.push(async move {
            let result = member_push(&addresses, &request, cluster, keys).await;
            (member.name.clone(), result)
        });
    }
    Ok(PushReport {
        results: futures::future::join_all(exchanges).await,
    })
}

/// One member: its addresses in order until one takes the connection, the whole
/// within [`MEMBER_TIMEOUT`].
async fn member_push(
    addresses: &[SocketAddr],
    request: &[u8],
    cluster: &str,
    keys: &Keyring,
) -> MemberResult {
    let mut errors = Vec::new();
    let deadline = tokio::time::Instant::now() + MEMBER_TIMEOUT;
    // A silent first address must leave time for the others.
    let per_connect = MEMBER_TIMEOUT / u32::try_from(addresses.len().max(1)).unwrap_or(1);
    for &addr in addresses {
        let connect_by = deadline.min(tokio::time::Instant::now() + per_connect);
        let stream = match tokio::time::timeout_at(connect_by, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                errors.push(format!("{addr}: {error}"));
                continue;
            }
            Err(_) => {
                errors.push(format!("{addr}: no connection within {per_connect:?}"));
                continue;
            }
        };
        return match tokio::time::timeout_at(deadline, exchange(stream, request, cluster, keys))
            .await
        {
            Ok(Ok(result)) => result,
            Ok(Err(why)) => {
                errors.push(format!("{addr}: {why}"));
                MemberResult::Unreachable { errors }
            }
            Err(_) => {
                errors.push(format!("{addr}: no answer within {MEMBER_TIMEOUT:?}"));
                MemberResult::Unreachable { errors }
            }
        };
    }
    if errors.is_empty() {
        errors.push("no address".to_owned());
    }
    MemberResult::Unreachable { errors }
}

/// Sends the framed request and reads the framed reply.
async fn exchange(
    mut stream: TcpStream,
    request: &[u8],
    cluster: &str,
    keys: &Keyring,
) -> Result<MemberResult, String> {
    let io = |error: std::io::Error| error.to_string();
    stream.write_all(&frame(request)).await.map_err(io)?;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await.map_err(|error| {
        format!("no reply ({error}): is it a failover agent with a heartbeat key?")
    })?;
    let len = frame_len(prefix).ok_or("reply too large: not a failover agent")?;
    let mut reply = vec![0u8; len];
    stream.read_exact(&mut reply).await.map_err(io)?;
    Ok(reply_result(&reply, request, cluster, keys))
}

/// What a member's reply says, checked against the request it answers.
fn reply_result(reply: &[u8], request: &[u8], cluster: &str, keys: &Keyring) -> MemberResult {
    let refused = |outcome, message: &str| MemberResult::Answered {
        outcome,
        config_hash: None,
        message: message.to_owned(),
    };
    match PushReply::decode(reply, cluster, keys) {
        Ok(reply) if Some(reply.request_mac) == mac_of(request) => MemberResult::Answered {
            outcome: reply.outcome,
            config_hash: Some(reply.config_hash),
            message: reply.message,
        },
        Ok(_) => MemberResult::Unreachable {
            errors: vec!["the reply answers another request".to_owned()],
        },
        // The member signs its reply with its own key: it differs from ours.
        Err(DropReason::BadMac) => refused(
            PushOutcome::BadMac,
            "the member's heartbeat key is not --key-file (nor --previous-key-file)",
        ),
        Err(DropReason::ForeignCluster) => refused(
            PushOutcome::OtherCluster,
            &format!("the member runs another cluster than {cluster}"),
        ),
        Err(other) => MemberResult::Unreachable {
            errors: vec![format!("unreadable reply: {}", error_report(&other))],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::auth::MAC_LEN;

    const CLUSTER: &str = "default/lab";

    fn keys() -> Keyring {
        Keyring::new(b"0123456789abcdef0123456789abcdef".to_vec(), None).unwrap()
    }

    fn request() -> Vec<u8> {
        PushRequest {
            cluster: CLUSTER.into(),
            node: "n1".into(),
            issued_ms: 5,
            config: "x".into(),
        }
        .encode(&keys())
        .unwrap()
    }

    fn reply(outcome: PushOutcome, request_mac: [u8; MAC_LEN], keys: &Keyring) -> Vec<u8> {
        PushReply {
            cluster: CLUSTER.into(),
            node: "n1".into(),
            request_mac,
            outcome,
            config_hash: 0xab,
            message: "why".into(),
        }
        .encode(keys)
        .unwrap()
    }

    #[test]
    fn a_reply_counts_only_for_its_request_and_key() {
        let request = request();
        let mac = mac_of(&request).unwrap();
        assert_eq!(
            reply_result(
                &reply(PushOutcome::Applied, mac, &keys()),
                &request,
                CLUSTER,
                &keys()
            ),
            MemberResult::Answered {
                outcome: PushOutcome::Applied,
                config_hash: Some(0xab),
                message: "why".into()
            }
        );
        assert!(matches!(
            reply_result(
                &reply(PushOutcome::Applied, [0; MAC_LEN], &keys()),
                &request,
                CLUSTER,
                &keys()
            ),
            MemberResult::Unreachable { .. }
        ));
        // Signed with another key: whatever it says, the keys differ.
        let other = Keyring::new(b"another key of enough length!!!!".to_vec(), None).unwrap();
        let result = reply_result(
            &reply(PushOutcome::Applied, mac, &other),
            &request,
            CLUSTER,
            &keys(),
        );
        assert!(matches!(
            result,
            MemberResult::Answered {
                outcome: PushOutcome::BadMac,
                ..
            }
        ));
        assert!(!result.accepted());
        assert!(matches!(
            reply_result(b"junk", &request, CLUSTER, &keys()),
            MemberResult::Unreachable { .. }
        ));
    }

    #[test]
    fn renders_one_line_per_member_and_json() {
        let report = PushReport {
            results: vec![
                (
                    "n1".into(),
                    MemberResult::Answered {
                        outcome: PushOutcome::Applied,
                        config_hash: Some(0xab),
                        message: String::new(),
                    },
                ),
                (
                    "node2".into(),
                    MemberResult::Answered {
                        outcome: PushOutcome::Replayed,
                        config_hash: Some(0xcd),
                        message: "issued at 5 ms".into(),
                    },
                ),
                (
                    "n3".into(),
                    MemberResult::Unreachable {
                        errors: vec!["10.0.0.3:7707: Connection refused".into()],
                    },
                ),
            ],
        };
        assert!(!report.all_accepted());
        assert!(report.any_accepted());
        assert_eq!(
            report.render(Format::Table),
            "n1     applied 00000000000000ab\n\
             node2  refused: replayed: issued at 5 ms\n\
             n3     unreachable: 10.0.0.3:7707: Connection refused\n"
        );
        let json: serde_json::Value = serde_json::from_str(&report.render(Format::Json)).unwrap();
        assert_eq!(json["allApplied"], false);
        assert_eq!(json["members"][0]["result"], "applied");
        assert_eq!(json["members"][0]["configHash"], "00000000000000ab");
        assert_eq!(json["members"][1]["result"], "refused");
        assert_eq!(json["members"][1]["reason"], "replayed");
        assert_eq!(json["members"][2]["result"], "unreachable");
        assert_eq!(
            json["members"][2]["errors"][0],
            "10.0.0.3:7707: Connection refused"
        );
    }

    #[tokio::test]
    async fn an_invalid_file_is_sent_to_nobody() {
        let error = push("f.yaml", "kind: [", &keys(), 1).await.unwrap_err();
        assert!(matches!(error, PushError::Invalid { .. }));
    }

    #[tokio::test]
    async fn a_member_without_a_listener_is_unreachable_at_every_address() {
        // Ports nobody listens on, on loopback: refused at once.
        let text = "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: lab}
spec:
  heartbeat: {port: 9}
  quorum: none
  members:
    - {node: n1, address: 127.0.0.1, additionalAddresses: [127.0.0.2]}
";
        let report = push("f.yaml", text, &keys(), 1).await.unwrap();
        let [(node, MemberResult::Unreachable { errors })] = report.results.as_slice() else {
            panic!("{report:?}");
        };
        assert_eq!(node, "n1");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("127.0.0.1:9: "), "{errors:?}");
        assert!(errors[1].starts_with("127.0.0.2:9: "), "{errors:?}");
    }
}
