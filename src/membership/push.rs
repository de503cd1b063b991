//! The configuration push of a standalone cluster: `failover config push` (and the
//! standalone write verbs of `failover ctl`) send a configuration file to a member's
//! agent over TCP, and the agent answers whether it applied it.
//!
//! Owns the encoding and decoding of the request and the reply, the TCP framing
//! (a u32 length prefix, [`MAX_PUSH`] at most) and the closed set of
//! [`PushOutcome`]s. They share the heartbeats' framing and checks (`wire::open`:
//! size, magic, version, cluster id, then the HMAC-SHA256 trailer under the cluster
//! keyring), so a push authenticates exactly like a heartbeat; the magic "FOCP",
//! the first bytes under the MAC, separates its MACs from those of heartbeats
//! ("FOHB") and witness datagrams ("FOWT"). It never panics on any byte sequence and
//! decides nothing: whether a push is fresh, for this node and runnable is the
//! agent's decision.
//!
//! Layout, version 1 (big-endian; `str` = u8 length + UTF-8 bytes, `text` = u32
//! length + UTF-8 bytes):
//!
//! ```text
//! offset  size  field
//! 0       4     magic "FOCP"
//! 4       1     version = 1
//! 5       1     kind: 0 = request, 1 = reply
//! 6       str   cluster id (request: the pushed file's; reply: the one the member runs)
//! ..      str   node (request: the member it is meant for; reply: the member answering)
//! request:
//! ..      8     issue time, unix ms (the member refuses it outside ±60 s of its clock
//!               and when it is not newer than the last push it accepted)
//! ..      text  the configuration file, as it is to be written
//! reply:
//! ..      32    the MAC of the request it answers
//! ..      1     outcome (PushOutcome::code)
//! ..      8     config hash: the one the member runs after the push
//! ..      text  a message: why, for a refusal (at most MAX_MESSAGE bytes)
//! end-32  32    HMAC-SHA256 over every byte before it
//! ```

use super::auth::{Keyring, MAC_LEN};
use super::wire::{DropReason, EncodeError, Reader, Writer, open};

/// First bytes of every push message.
pub const MAGIC: &[u8; 4] = b"FOCP";
/// The push wire version this code writes and the only one it reads.
pub const VERSION: u8 = 1;
/// The largest request or reply, length prefix excluded: a configuration of a few
/// hundred groups fits many times over.
pub const MAX_PUSH: usize = 1 << 20;
/// The longest message of a reply (longer ones are cut at a character boundary).
pub const MAX_MESSAGE: usize = 4096;
const KIND_REQUEST: u8 = 0;
const KIND_REPLY: u8 = 1;

/// A configuration sent to one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRequest {
    /// The cluster id of the pushed configuration.
    pub cluster: String,
    /// The member the push is meant for.
    pub node: String,
    /// When the pusher issued it, unix ms.
    pub issued_ms: u64,
    /// The configuration file's text.
    pub config: String,
}

/// What a member did with a push: applied, unchanged, or one reason of refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PushOutcome {
    /// Written to the member's configuration file and applied.
    Applied,
    /// Written, and the member already ran this configuration (same hash and the
    /// same clear-failures values).
    Unchanged,
    /// Not a push request, or truncated, oversized, or not UTF-8.
    Malformed,
    /// Signed with a key the member does not have.
    BadMac,
    /// The request names another cluster than the member runs.
    OtherCluster,
    /// The request is meant for another member.
    OtherNode,
    /// Issued more than 60 s before or after the member's clock.
    ClockSkew,
    /// Not newer than the last push the member accepted (or its start).
    Replayed,
    /// The configuration does not load or validate.
    InvalidConfig,
    /// The configuration names another cluster than the member runs.
    ConfigOtherCluster,
    /// The configuration does not list the member.
    NotAMember,
    /// The member could not write its configuration file.
    WriteFailed,
}

impl PushOutcome {
    /// Every outcome, for exporting one counter each and for documentation checks.
    pub const ALL: [PushOutcome; 12] = [
        PushOutcome::Applied,
        PushOutcome::Unchanged,
        PushOutcome::Malformed,
        PushOutcome::BadMac,
        PushOutcome::OtherCluster,
        PushOutcome::OtherNode,
        PushOutcome::ClockSkew,
        PushOutcome::Replayed,
        PushOutcome::InvalidConfig,
        PushOutcome::ConfigOtherCluster,
        PushOutcome::NotAMember,
        PushOutcome::WriteFailed,
    ];

    /// Stable snake-case label for metrics, logs and `failover config push`.
    pub fn label(self) -> &'static str {
        match self {
            PushOutcome::Applied => "applied",
            PushOutcome::Unchanged => "unchanged",
            PushOutcome::Malformed => "malformed",
            PushOutcome::BadMac => "bad_mac",
            PushOutcome::OtherCluster => "other_cluster",
            PushOutcome::OtherNode => "other_node",
            PushOutcome::ClockSkew => "clock_skew",
            PushOutcome::Replayed => "replayed",
            PushOutcome::InvalidConfig => "invalid_config",
            PushOutcome::ConfigOtherCluster => "config_other_cluster",
            PushOutcome::NotAMember => "not_a_member",
            PushOutcome::WriteFailed => "write_failed",
        }
    }

    /// Whether the member runs the pushed configuration.
    pub fn accepted(self) -> bool {
        matches!(self, PushOutcome::Applied | PushOutcome::Unchanged)
    }

    fn code(self) -> u8 {
        // The position in ALL: ALL has 12 entries.
        PushOutcome::ALL
            .iter()
            .position(|o| *o == self)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(u8::MAX)
    }

    fn from_code(code: u8) -> Option<Self> {
        PushOutcome::ALL.get(usize::from(code)).copied()
    }
}

/// A member's answer to one push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReply {
    /// The cluster the member runs.
    pub cluster: String,
    /// The member answering.
    pub node: String,
    /// The MAC of the request it answers.
    pub request_mac: [u8; MAC_LEN],
    pub outcome: PushOutcome,
    /// The configuration hash the member runs after the push.
    pub config_hash: u64,
    /// Why, for a refusal; empty otherwise.
    pub message: String,
}

impl PushRequest {
    /// Encodes and signs with the keyring's current key.
    pub fn encode(&self, keys: &Keyring) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::header(MAGIC, VERSION, KIND_REQUEST, &self.cluster)?;
        w.str(&self.node)?;
        w.u64(self.issued_ms);
        w.long_str(&self.config)?;
        w.seal_within(MAX_PUSH, keys)
    }

    /// Decodes a request of `cluster`, verifying its MAC with any key of `keys`.
    pub fn decode(bytes: &[u8], cluster: &str, keys: &Keyring) -> Result<Self, DropReason> {
        let mut r = opened(bytes, KIND_REQUEST, cluster, keys)?;
        let request = PushRequest {
            cluster: cluster.to_owned(),
            node: r.str()?.to_owned(),
            issued_ms: r.u64()?,
            config: r.long_str()?.to_owned(),
        };
        r.finish()?;
        Ok(request)
    }
}

/// The MAC trailer of an encoded message (what a reply echoes), if it has one.
pub fn mac_of(bytes: &[u8]) -> Option<[u8; MAC_LEN]> {
    let start = bytes.len().checked_sub(MAC_LEN)?;
    bytes[start..].try_into().ok()
}

impl PushReply {
    /// Encodes and signs with the keyring's current key; a message longer than
    /// [`MAX_MESSAGE`] is cut.
    pub fn encode(&self, keys: &Keyring) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::header(MAGIC, VERSION, KIND_REPLY, &self.cluster)?;
        w.str(&self.node)?;
        w.raw(&self.request_mac);
        w.u8(self.outcome.code());
        w.u64(self.config_hash);
        w.long_str(cut(&self.message, MAX_MESSAGE))?;
        w.seal_within(MAX_PUSH, keys)
    }

    /// Decodes a reply of `cluster`, verifying its MAC with any key of `keys`.
    pub fn decode(bytes: &[u8], cluster: &str, keys: &Keyring) -> Result<Self, DropReason> {
        let mut r = opened(bytes, KIND_REPLY, cluster, keys)?;
        let node = r.str()?.to_owned();
        let mut request_mac = [0u8; MAC_LEN];
        request_mac.copy_from_slice(r.take(MAC_LEN)?);
        let outcome = PushOutcome::from_code(r.u8()?).ok_or(DropReason::Malformed)?;
        let config_hash = r.u64()?;
        let message = r.long_str()?;
        if message.len() > MAX_MESSAGE {
            return Err(DropReason::Malformed);
        }
        let message = message.to_owned();
        r.finish()?;
        Ok(PushReply {
            cluster: cluster.to_owned(),
            node,
            request_mac,
            outcome,
            config_hash,
            message,
        })
    }
}

/// The first `max` bytes of `text` at most, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The common checks, then the kind byte.
fn opened<'a>(
    bytes: &'a [u8],
    kind: u8,
    cluster: &str,
    keys: &Keyring,
) -> Result<Reader<'a>, DropReason> {
    let (found, r) = open(bytes, MAX_PUSH, MAGIC, VERSION, cluster, keys)?;
    if found != kind {
        return Err(DropReason::Malformed);
    }
    Ok(r)
}

/// The length prefix of a framed message: the message's length, or `None` when it
/// exceeds [`MAX_PUSH`] (the reader must not allocate for it).
pub fn frame_len(prefix: [u8; 4]) -> Option<usize> {
    usize::try_from(u32::from_be_bytes(prefix))
        .ok()
        .filter(|&n| n <= MAX_PUSH)
}

/// `message` with its length prefix, ready for the stream.
pub fn frame(message: &[u8]) -> Vec<u8> {
    // Encoded messages are at most MAX_PUSH bytes, which fits in a u32.
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut framed = Vec::with_capacity(4 + message.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLUSTER: &str = "default/lab";

    fn keys() -> Keyring {
        Keyring::new(b"0123456789abcdef0123456789abcdef".to_vec(), None).unwrap()
    }

    fn request() -> PushRequest {
        PushRequest {
            cluster: CLUSTER.into(),
            node: "n2".into(),
            issued_ms: 1_764_000_000_000,
            config: "apiVersion: failover.dev/v1alpha1\nkind: FailoverCluster\n# é\n".into(),
        }
    }

    fn reply(outcome: PushOutcome, message: &str) -> PushReply {
        PushReply {
            cluster: CLUSTER.into(),
            node: "n2".into(),
            request_mac: [7; MAC_LEN],
            outcome,
            config_hash: 0xfeed_beef,
            message: message.into(),
        }
    }

    #[test]
    fn round_trips() {
        let bytes = request().encode(&keys()).unwrap();
        assert_eq!(&bytes[..4], MAGIC);
        assert_eq!(PushRequest::decode(&bytes, CLUSTER, &keys()), Ok(request()));
        assert_eq!(mac_of(&bytes).unwrap(), bytes[bytes.len() - MAC_LEN..]);
        for outcome in PushOutcome::ALL {
            let bytes = reply(outcome, "why").encode(&keys()).unwrap();
            assert_eq!(
                PushReply::decode(&bytes, CLUSTER, &keys()),
                Ok(reply(outcome, "why"))
            );
        }
    }

    #[test]
    fn labels_and_codes_are_distinct() {
        let labels: std::collections::BTreeSet<_> =
            PushOutcome::ALL.iter().map(|o| o.label()).collect();
        assert_eq!(labels.len(), PushOutcome::ALL.len());
        for outcome in PushOutcome::ALL {
            assert_eq!(PushOutcome::from_code(outcome.code()), Some(outcome));
        }
        assert_eq!(PushOutcome::from_code(12), None);
        assert!(PushOutcome::Unchanged.accepted());
        assert!(!PushOutcome::Replayed.accepted());
    }

    #[test]
    fn refuses_with_reasons() {
        let bytes = request().encode(&keys()).unwrap();
        let wrong = Keyring::new(b"another key of enough length!!!!".to_vec(), None).unwrap();
        assert_eq!(
            PushRequest::decode(&bytes, CLUSTER, &wrong),
            Err(DropReason::BadMac)
        );
        assert_eq!(
            PushRequest::decode(&bytes, "default/other", &keys()),
            Err(DropReason::ForeignCluster)
        );
        // A reply is not a request, and a heartbeat's MAC never verifies as a push.
        let answer = reply(PushOutcome::Applied, "").encode(&keys()).unwrap();
        assert_eq!(
            PushRequest::decode(&answer, CLUSTER, &keys()),
            Err(DropReason::Malformed)
        );
        let mut tampered = bytes.clone();
        tampered[10] ^= 1;
        assert!(PushRequest::decode(&tampered, CLUSTER, &keys()).is_err());
        let rotated = Keyring::new(
            b"the next key, long enough......!".to_vec(),
            Some(b"0123456789abcdef0123456789abcdef".to_vec()),
        )
        .unwrap();
        assert_eq!(
            PushRequest::decode(&bytes, CLUSTER, &rotated),
            Ok(request())
        );
        assert_eq!(
            PushRequest::decode(&vec![0; MAX_PUSH + 1], CLUSTER, &keys()),
            Err(DropReason::Oversized)
        );
    }

    #[test]
    fn a_config_too_large_is_not_encoded() {
        let big = PushRequest {
            config: "x".repeat(MAX_PUSH),
            ..request()
        };
        assert!(matches!(
            big.encode(&keys()),
            Err(EncodeError::TooLarge { max: MAX_PUSH, .. })
        ));
    }

    #[test]
    fn long_messages_are_cut_at_a_character() {
        let long = "é".repeat(MAX_MESSAGE);
        let bytes = reply(PushOutcome::InvalidConfig, &long)
            .encode(&keys())
            .unwrap();
        let decoded = PushReply::decode(&bytes, CLUSTER, &keys()).unwrap();
        assert_eq!(decoded.message.len(), MAX_MESSAGE);
        assert!(long.starts_with(&decoded.message));
    }

    #[test]
    fn frames_are_bounded() {
        let framed = frame(b"abc");
        assert_eq!(framed, [0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(frame_len([0, 0, 0, 3]), Some(3));
        assert_eq!(frame_len(u32::MAX.to_be_bytes()), None);
        let max = u32::try_from(MAX_PUSH).unwrap();
        assert_eq!(frame_len(max.to_be_bytes()), Some(MAX_PUSH));
        assert_eq!(frame_len((max + 1).to_be_bytes()), None);
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = PushRequest::decode(&bytes, CLUSTER, &keys());
            let _ = PushReply::decode(&bytes, CLUSTER, &keys());
        }

        #[test]
        fn never_panics_on_mutations(index in 0usize..4096, value in any::<u8>(), cut in 0usize..4096) {
            let mut bytes = request().encode(&keys()).unwrap();
            let i = index % bytes.len();
            bytes[i] = value;
            bytes.truncate(cut.max(1));
            let _ = PushRequest::decode(&bytes, CLUSTER, &keys());
        }
    }
}
